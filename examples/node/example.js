#!/usr/bin/env node
// Calls ringcache.v1.Cache from Node.js: Set, Get, GetMany, Delete, Get after
// the delete, and a Get of an unknown namespace (a NOT_FOUND status).
//
// The .proto files are loaded at run time from the repository's proto/
// folder, so nothing is generated. Every call has its own deadline.
//
//   npm ci
//   node example.js --addr 127.0.0.1:7101
//   node example.js --addr 10.0.0.5:7101 --tls-ca certs/ca.crt --token "$RINGCACHE_TOKEN"
//
// With --tls-ca (and, for mutual TLS, --tls-cert and --tls-key) it dials over
// TLS; with --token or $RINGCACHE_TOKEN every call carries the metadata
// `authorization: Bearer <token>`.
//
// Prints one line per step and exits 0 when every result is what the
// contract says, 1 when one is not (or a call fails), 2 on bad usage.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const USAGE = `usage: node example.js [--addr HOST:PORT] [--namespace NS] [--key KEY] [--timeout MS] [--proto-dir DIR]
                       [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token TOKEN]

  --addr       a ringcache node's gRPC address (default $RINGCACHE_ADDR or 127.0.0.1:7101)
  --namespace  a pure-cache namespace to write to (default sessions)
  --key        the key to use (default example-node-<pid>; GetMany also asks for <key>-missing)
  --timeout    deadline of each call in milliseconds (default 5000)
  --proto-dir  the folder holding ringcache/v1/cache.proto (default ../../proto from this file)
  --tls-ca     CA that signs the nodes' certificates (PEM); dials over TLS (without it, with
               --tls-cert: the system's CAs)
  --tls-cert   client certificate (PEM; ringcachectl certs client makes one) for mutual TLS
  --tls-key    the key of --tls-cert (PEM)
  --token      bearer token that identifies the caller (default $RINGCACHE_TOKEN)`;

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
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      token: { type: 'string', default: process.env.RINGCACHE_TOKEN || '' },
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

// readPEM reads a file named by a flag, or exits 2 saying which flag is wrong.
function readPEM(flag) {
  try {
    return fs.readFileSync(opts[flag]);
  } catch (err) {
    return usage(`--${flag}: ${err.message}`);
  }
}

// channelCredentials is TLS when any --tls-* flag is given (mutual TLS with
// --tls-cert and --tls-key), plaintext otherwise.
function channelCredentials() {
  const { 'tls-ca': ca, 'tls-cert': cert, 'tls-key': key } = opts;
  if (!ca && !cert && !key) return grpc.credentials.createInsecure();
  if (!cert !== !key) usage('--tls-cert and --tls-key go together: a client certificate needs its key');
  return grpc.credentials.createSsl(ca ? readPEM('tls-ca') : null, key ? readPEM('tls-key') : null, cert ? readPEM('tls-cert') : null);
}

const tls = Boolean(opts['tls-ca'] || opts['tls-cert'] || opts['tls-key']);
const client = new Cache(opts.addr, channelCredentials());

// metadata goes with every call: the bearer token, the gRPC convention for
// it. (Passed per call, it works over plaintext too, where grpc-js refuses
// call credentials; send a token in the clear on loopback only.)
const metadata = new grpc.Metadata();
if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);

// security says how the example reaches the node, for its first line.
function security() {
  const parts = [];
  if (opts['tls-cert']) parts.push('TLS, client certificate');
  else if (tls) parts.push('TLS');
  else if (opts.token) parts.push('plaintext');
  if (opts.token) parts.push('bearer token');
  return parts.length ? ` (${parts.join(', ')})` : '';
}

// call runs one unary RPC with its own deadline and resolves with the response.
function call(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + timeoutMs }, (err, response) => {
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

  console.log(`ringcache example (node) against ${opts.addr}${security()}`);
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

    // An unknown namespace is an error status, unlike a missing key:
    // NOT_FOUND, or PERMISSION_DENIED when the node checks roles and this
    // caller may not read it (a node does not tell a caller which
    // namespaces exist that it may not read).
    const unknown = 'no-such-namespace';
    step = `Get ${unknown}/${key}`;
    try {
      await call('Get', { namespace: unknown, key });
      check(false, 'want status NOT_FOUND or PERMISSION_DENIED, got a response');
    } catch (err) {
      if (err instanceof CheckFailed) throw err;
      check(
        err.code === grpc.status.NOT_FOUND || err.code === grpc.status.PERMISSION_DENIED,
        `want status NOT_FOUND or PERMISSION_DENIED, got ${codeName(err.code)}: ${err.details}`,
      );
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
