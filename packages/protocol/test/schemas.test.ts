import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FlotillaErrorCode,
  HostedServerSchema,
  LoadReportSchema,
  NOT_ACCEPTED_CODES,
  NodeRecordSchema,
  PROTOCOL_VERSION,
  decodeJson,
  encodeJson,
  serverAffinity,
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

test('a hosted server carries its affinity; records without it, or with a value unknown here, stay valid and mean none', () => {
  const sticky = { ...record, servers: [{ name: 'stateful', path: '/mcp/stateful', toolDigest: 'd2', toolCount: 9, affinity: 'sticky' as const }] };
  const decoded = decodeJson(NodeRecordSchema, encodeJson(sticky));
  assert.deepEqual(decoded, { ok: true, value: sticky });
  assert.equal(serverAffinity(sticky.servers[0]!), 'sticky');
  // An older agent's record has no affinity field: still valid, and read as 'none'.
  const old = decodeJson(NodeRecordSchema, encodeJson(record));
  assert.ok(old.ok);
  assert.equal(old.ok && old.value.servers[0]!.affinity, undefined);
  assert.equal(serverAffinity(record.servers[0]!), 'none');
  // A value from a newer agent reads as absent: the record (and the node) stays valid.
  const newer = HostedServerSchema.safeParse({ ...record.servers[0], affinity: 'zone-sticky' });
  assert.ok(newer.success);
  assert.equal(newer.success && serverAffinity(newer.data), 'none');
});

test('error codes are distinct, and a session-limit refusal counts as not accepted', () => {
  const codes = Object.values(FlotillaErrorCode);
  assert.equal(new Set(codes).size, codes.length);
  for (const code of codes) assert.ok(code <= -32000 && code >= -32099, `${code} is in the server-error range`);
  assert.equal(FlotillaErrorCode.SessionLimit, -32016);
  assert.ok(NOT_ACCEPTED_CODES.has(FlotillaErrorCode.SessionLimit));
});
