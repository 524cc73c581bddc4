import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  LoadReportSchema,
  NodeRecordSchema,
  PROTOCOL_VERSION,
  decodeJson,
  encodeJson,
  subjects,
  type NodeRecord,
} from '@flotilla/protocol';

const record: NodeRecord = {
  v: PROTOCOL_VERSION,
  nodeId: 'node-1',
  instanceId: 'abc',
  mcpBaseUrl: 'http://127.0.0.1:7001',
  servers: [{ name: 'echo', path: '/mcp/echo', toolDigest: 'd1', toolCount: 1 }],
  version: '0.1.0',
  capacity: 16,
  startedAt: 1,
  draining: false,
};

test('a node record round-trips through the wire encoding', () => {
  const decoded = decodeJson(NodeRecordSchema, encodeJson(record));
  assert.deepEqual(decoded, { ok: true, value: record });
});

test('decodeJson reports invalid JSON and schema violations instead of throwing', () => {
  const bad = decodeJson(NodeRecordSchema, new TextEncoder().encode('{not json'));
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.error, /invalid JSON/);
  const wrong = decodeJson(NodeRecordSchema, encodeJson({ ...record, nodeId: 'has space', capacity: 0 }));
  assert.equal(wrong.ok, false);
  assert.match(wrong.ok ? '' : wrong.error, /nodeId/);
  assert.match(wrong.ok ? '' : wrong.error, /capacity/);
});

test('load reports with a future protocol version are refused', () => {
  const report = { v: PROTOCOL_VERSION, nodeId: 'n', seq: 0, at: 0, inflight: 0, queued: 0, capacity: 1, eventLoopLagMs: 0, draining: false, tools: {} };
  assert.equal(LoadReportSchema.safeParse(report).success, true, 'the same report at our version is valid');
  const r = LoadReportSchema.safeParse({ ...report, v: PROTOCOL_VERSION + 1 });
  assert.equal(r.success, false);
  // Refused for its version, and for nothing else.
  assert.deepEqual(r.error?.issues.map((i) => i.path), [['v']]);
});

test('subjects live under the prefix and refuse unsafe tokens', () => {
  const s = subjects('acme.flotilla');
  assert.equal(s.load('node-1'), 'acme.flotilla.v1.load.node-1');
  assert.equal(s.allProgress, 'acme.flotilla.v1.progress.*');
  assert.equal(s.registryBucket, 'acme_flotilla_nodes');
  assert.throws(() => s.load('a.b'), /node id/);
  assert.throws(() => subjects('bad prefix'), /invalid NATS subject prefix/);
});
