#!/usr/bin/env node
// Calls ringcache.v1.Cache from Node.js: Set, Get, GetMany, Delete, Get after
// the delete, and a Get of an unknown namespace (a NOT_FOUND status).
//
// The .proto files are loaded at run time from the repository's proto/
// folder, so nothing is generated. Every call has its own deadline.
//
//   npm ci
//   node example.js --addr 127.0.0.1:7101
//
// Prints one line per step and exits 0 when every result is what the
// contract says, 1 when one is not (or a call fails), 2 on bad usage.
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const USAGE = `usage: node example.js [--addr HOST:PORT] [--namespace NS] [--key KEY] [--timeout MS] [--proto-dir DIR]

  --addr       a ringcache node's gRPC address (default $RINGCACHE_ADDR or 127.0.0.1:7101)
  --namespace  a pure-cache namespace to write to (default sessions)
  --key        the key to use (default example-node-<pid>; GetMany also asks for <key>-missing)
  --timeout    deadline of each call in milliseconds (default 5000)
  --proto-dir  the folder holding ringcache/v1/cache.proto (default ../../proto from this file)`;

function usage(msg) {
  if (msg) console.error(`example.js: ${msg}`);
  console.error(USAGE);
  process.exit(2);
}

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      addr: { type: 'string', default: process.env.RINGCACHE_ADDR || '127.0.0.1:7101' },
      namespace: { type: 'string', default: 'sessions' },
      key: { type: 'string', default: `example-node-${process.pid}` },
      timeout: { type: 'string', default: '5000' },
      'proto-dir': { type: 'string', default: path.join(__dirname, '..', '..', 'proto') },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usage(err.message);
}
if (opts.help) usage();
const timeoutMs = Number(opts.timeout);
if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage(`--timeout: want a positive number of milliseconds, got "${opts.timeout}"`);

// includeDirs makes `import "ringcache/v1/..."` resolve against the proto
// folder; google/protobuf/duration.proto comes bundled with protobufjs.
const packageDefinition = protoLoader.loadSync('ringcache/v1/cache.proto', {
  includeDirs: [opts['proto-dir']],
  keepCase: true, // field names as in the .proto: error_code, not errorCode
  longs: String, // int64 (Duration.seconds) as a string, never a lossy number
  enums: String,
  defaults: true, // absent fields read as their zero value (found: false)
  oneofs: true,
});
const { Cache } = grpc.loadPackageDefinition(packageDefinition).ringcache.v1;

const client = new Cache(opts.addr, grpc.credentials.createInsecure());

// call runs one unary RPC with its own deadline and resolves with the response.
function call(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err) reject(err);
      else resolve(response);
    });
  });
}

// codeName turns a numeric gRPC status code into its name (5 -> NOT_FOUND).
function codeName(code) {
  return grpc.status[code] ?? `code ${code}`;
}

class CheckFailed extends Error {}

function check(ok, what) {
  if (!ok) throw new CheckFailed(what);
}

function show(value) {
  return JSON.stringify(Buffer.from(value).toString('utf8'));
}

async function main() {
  const ns = opts.namespace;
  const key = opts.key;
  const missing = `${key}-missing`;
  const value = Buffer.from('hello from node');
  let step = '';
  let steps = 0;

  console.log(`ringcache example (node) against ${opts.addr}`);
  try {
    step = `Set ${ns}/${key} ttl=60s`;
    await call('Set', { namespace: ns, key, value, ttl: { seconds: 60, nanos: 0 } });
    console.log(`${step}: ok`);
    steps++;

    step = `Get ${ns}/${key}`;
    let got = await call('Get', { namespace: ns, key });
    check(got.found, 'want found, got not found');
    check(value.equals(got.value), `want value ${show(value)}, got ${show(got.value)}`);
    console.log(`${step}: found ${show(got.value)}: ok`);
    steps++;

    step = `GetMany ${ns} [${key}, ${missing}]`;
    const many = await call('GetMany', { namespace: ns, keys: [key, missing] });
    check(many.results.length === 2, `want 2 results, got ${many.results.length}`);
    const [first, second] = many.results;
    for (const r of many.results) {
      check(r.error_code === 0, `${r.key}: error ${codeName(r.error_code)}: ${r.error_message}`);
    }
    check(first.key === key && second.key === missing, `results out of order: ${first.key}, ${second.key}`);
    check(first.found && value.equals(first.value), `${key}: want found ${show(value)}`);
    check(!second.found, `${missing}: want not found`);
    console.log(`${step}: found, not found: ok`);
    steps++;

    step = `Delete ${ns}/${key}`;
    await call('Delete', { namespace: ns, key });
    console.log(`${step}: ok`);
    steps++;

    step = `Get ${ns}/${key}`;
    got = await call('Get', { namespace: ns, key });
    check(!got.found, `want not found after Delete, got ${show(got.value)}`);
    console.log(`${step}: not found: ok`);
    steps++;

    // An unknown namespace is an error status, unlike a missing key.
    const unknown = 'no-such-namespace';
    step = `Get ${unknown}/${key}`;
    try {
      await call('Get', { namespace: unknown, key });
      check(false, 'want status NOT_FOUND, got a response');
    } catch (err) {
      if (err instanceof CheckFailed) throw err;
      check(err.code === grpc.status.NOT_FOUND, `want status NOT_FOUND, got ${codeName(err.code)}: ${err.details}`);
      console.log(`${step}: ${codeName(err.code)}: ok`);
    }
    steps++;
  } catch (err) {
    const why = err instanceof CheckFailed ? err.message : `${codeName(err.code)}: ${err.details ?? err.message}`;
    console.error(`FAIL ${step}: ${why}`);
    return 1;
  }
  console.log(`PASS: ${steps} steps`);
  return 0;
}

main()
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    console.error(`example.js: ${err.stack || err}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
