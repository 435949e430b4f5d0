#!/usr/bin/env node
// Drives ringcache's Redis door with ioredis's Redis Cluster client.
//
// ioredis's Cluster reads the slot map (CLUSTER SLOTS) from the node it is
// given and then sends each key to its owner itself: no forwarding hop. It
// runs:
//   1. SET of --keys keys (PREFIX:0 ... PREFIX:N-1) with a 60 s TTL, then
//      GET of each: the values come back;
//   2. TTL of one: between 1 and 60 s;
//   3. MSET and MGET of keys sharing a {hash tag} (one slot, so one owner);
//   4. DEL of one key, then EXISTS: 0;
//   5. the masters it learned: one per node, printed.
//
//   npm ci
//   node redis-cluster.js --addr 127.0.0.1:6401
//
// Exits 0 when every result is what it should be, 1 when one is not (or a
// command fails), 2 on bad usage.
'use strict';

const { parseArgs } = require('node:util');
const { Cluster } = require('ioredis');

const USAGE = `usage: node redis-cluster.js [--addr HOST:PORT] [--prefix P] [--keys N] [--password TOKEN]

  --addr      any node's Redis door (default $RINGCACHE_RESP_ADDR or 127.0.0.1:6401)
  --prefix    key prefix (default example-node)
  --keys      how many keys to SET and GET (default 100)
  --password  AUTH token when the node has an auth: section (default $RINGCACHE_TOKEN)`;

function usage(msg) {
  console.error(`redis-cluster.js: ${msg}\n${USAGE}`);
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    options: {
      addr: { type: 'string', default: process.env.RINGCACHE_RESP_ADDR || '127.0.0.1:6401' },
      prefix: { type: 'string', default: 'example-node' },
      keys: { type: 'string', default: '100' },
      password: { type: 'string', default: process.env.RINGCACHE_TOKEN || '' },
    },
  }).values;
} catch (err) {
  usage(err.message);
}
const sep = opts.addr.lastIndexOf(':');
const port = Number(opts.addr.slice(sep + 1));
const n = Number(opts.keys);
if (sep < 1 || !/^\d+$/.test(opts.addr.slice(sep + 1)) || port < 1 || port > 65535 || !Number.isInteger(n) || n < 1) {
  usage('--addr must be host:port and --keys a number, at least 1');
}

async function main() {
  const cluster = new Cluster([{ host: opts.addr.slice(0, sep), port }], {
    redisOptions: { password: opts.password || undefined, commandTimeout: 5000 },
    clusterRetryStrategy: () => null, // fail rather than retry forever
    // ioredis's command connections never send a cluster command, so a
    // ringcache node forwards keys that moved in a ring change rather than
    // answer MOVED; reload the map every 2 s to follow it (docs/resp.md).
    slotsRefreshInterval: 2000,
  });
  cluster.on('error', () => {}); // a failed command reports it; no "Unhandled error event" noise
  let failed = false;
  const check = (step, ok, got) => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${step}: ${JSON.stringify(got)}`);
    failed ||= !ok;
  };
  try {
    const keys = Array.from({ length: n }, (_, i) => `${opts.prefix}:${i}`);
    for (const [i, k] of keys.entries()) await cluster.set(k, `${opts.prefix}-value-${i}`, 'EX', 60);
    const got = await Promise.all(keys.map((k) => cluster.get(k)));
    const bad = got.filter((v, i) => v !== `${opts.prefix}-value-${i}`).length;
    check(`SET and GET of ${n} keys`, bad === 0, `${bad} wrong`);
    const ttl = await cluster.ttl(keys[0]);
    check(`TTL ${keys[0]}`, ttl > 0 && ttl <= 60, ttl);
    const tagged = [`{${opts.prefix}}:a`, `{${opts.prefix}}:b`];
    await cluster.mset(tagged[0], '1', tagged[1], '2');
    const both = await cluster.mget(...tagged);
    check('MSET and MGET of one {hash tag}', both[0] === '1' && both[1] === '2', both);
    const deleted = await cluster.del(keys[0]);
    const left = await cluster.exists(keys[0]);
    check(`DEL ${keys[0]}, then EXISTS`, deleted === 1 && left === 0, [deleted, left]);
    const masters = cluster.nodes('master').map((m) => `${m.options.host}:${m.options.port}`).sort();
    console.log(`masters ${masters.join(' ')}`);
  } catch (err) {
    console.log(`FAIL ${err.name}: ${err.message}`);
    failed = true;
  } finally {
    cluster.disconnect();
  }
  return failed ? 1 : 0;
}

main().then((code) => {
  process.exitCode = code; // exit once stdout is flushed
});
