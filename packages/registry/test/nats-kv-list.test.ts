/**
 * `list()` on NATS KV while agents heartbeat fast: a listing built on kv.keys() blocked here for ~90 s,
 * because its consumer never saw "nothing pending". This guards `flotilla nodes` on a busy fleet.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { PROTOCOL_VERSION, type NodeRecord } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { NatsKvRegistry } from '../src/index.js';

let nats: NatsServerProcess;
let nc: NatsConnection;

before(async () => {
  nats = await NatsServerProcess.start();
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc.close();
  await nats.dispose();
});

const record = (nodeId: string): NodeRecord => ({
  v: PROTOCOL_VERSION, nodeId, instanceId: `i-${nodeId}`, mcpBaseUrl: 'http://127.0.0.1:1', servers: [], version: 'test', capacity: 1, startedAt: Date.now(), draining: false,
});

test('list() returns every node promptly while heartbeats keep arriving', async () => {
  const registry = new NatsKvRegistry(nc, { prefix: 'listing', logger: createLogger({ name: 'test', level: 'silent' }) });
  const ids = ['a', 'b', 'c'];
  for (const id of ids) await registry.register(record(id));
  let beating = true;
  const beats = (async () => {
    while (beating) {
      for (const id of ids) await registry.heartbeat(record(id), { at: Date.now(), inflight: 0, queued: 0, eventLoopLagMs: 0, uptimeS: 1, status: 'ok' });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    for (let i = 0; i < 5; i++) {
      const nodes = await registry.list();
      assert.deepEqual(nodes.map((n) => n.record.nodeId), ids);
      assert.ok(nodes.every((n) => n.ping !== undefined));
    }
  } finally {
    beating = false;
    await beats;
  }
  await registry.deregister('b');
  assert.deepEqual((await registry.list()).map((n) => n.record.nodeId), ['a', 'c']);
});
