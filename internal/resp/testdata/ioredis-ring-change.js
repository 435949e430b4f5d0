#!/usr/bin/env node
// Load for TestOtherLanguagesClusterClients_FollowRingChanges: ioredis's
// Cluster client, given one node's Redis door, sets and reads back keys
// without pause while the test changes the ring, and answers the test's
// commands, one per line on standard input:
//
//   ops    print "ops OPS ERRORS": the load's rounds so far, and its errors
//   stop   end the load; print "load OPS ERRORS" (errors are allowed then)
//   check  SET and GET 50 fresh keys; print "check ok", or "check FAIL why"
//   quit   exit 0
//
// It prints "ready" once it has read the slot map. A second argument, if
// not 0, sets ioredis's slotsRefreshInterval in milliseconds (by default
// ioredis reloads its map only on MOVED and connection errors). Run with
// NODE_PATH set to examples/node/node_modules (npm ci --prefix examples/node).
'use strict';

const readline = require('node:readline');
const { Cluster } = require('ioredis');

const [host, port] = (process.argv[2] || '').split(':');
const refresh = Number(process.argv[3] || 0);
if (!host || !port || !Number.isInteger(refresh) || refresh < 0) {
  console.error('usage: node ioredis-ring-change.js HOST:PORT [SLOTS_REFRESH_MS]');
  process.exit(2);
}

const options = { redisOptions: { commandTimeout: 2000 } };
if (refresh > 0) options.slotsRefreshInterval = refresh;
const cluster = new Cluster([{ host, port: Number(port) }], options);
cluster.on('error', () => {}); // a failed command reports it

let round = 0;
async function setThenGet(prefix) {
  const k = `${prefix}:${round++}`;
  const v = `v${round}`;
  await cluster.set(k, v, 'EX', 60);
  const got = await cluster.get(k);
  if (got !== v) throw new Error(`GET ${k} = ${JSON.stringify(got)}, want ${v}`);
}

let loading = true;
let ops = 0;
let errors = 0;
async function load() {
  while (loading) {
    try {
      await setThenGet('load');
      ops++;
    } catch {
      errors++;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function main() {
  await new Promise((resolve, reject) => {
    cluster.once('ready', resolve);
    cluster.once('end', () => reject(new Error('connection ended before ready')));
  });
  console.log('ready');
  const loaded = load();
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    switch (line.trim()) {
      case 'ops':
        console.log(`ops ${ops} ${errors}`);
        break;
      case 'stop':
        loading = false;
        await loaded;
        console.log(`load ${ops} ${errors}`);
        break;
      case 'check':
        try {
          for (let i = 0; i < 50; i++) await setThenGet('check');
          console.log('check ok');
        } catch (err) {
          console.log(`check FAIL ${String(err.message || err).replace(/\n/g, ' ')}`);
        }
        break;
      case 'quit':
        cluster.disconnect();
        process.exit(0);
      default:
        console.log(`unknown command ${JSON.stringify(line)}`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
