/** Unit tests of the Consul encoding: record in service meta, ping in TTL check output, health mapping, settings. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parsePingOutput, pingToCheckStatus, worstHealth } from '../src/consul/consulHealth.js';
import { formatConsulDuration } from '../src/consul/consulDuration.js';
import {
  RECORD_META,
  RecordTooLargeError,
  buildServiceDefinition,
  consulSettingsFromEnv,
  decodeRecordMeta,
  encodeRecordMeta,
  parseConsulAddress,
} from '../src/index.js';
import { serverAffinity } from '@flotilla/protocol';
import { testPing, testRecord } from './conformance.js';
import { EXAMPLE_CHECKS, EXAMPLE_RECORD } from './support/deployExample.js';

describe('record encoding in Consul service meta', () => {
  it('round-trips a record, non-ASCII included, within Consul limits', () => {
    const servers = Array.from({ length: 30 }, (_, i) => ({ name: `srv-${i}`, path: `/mcp/srv-${i}`, toolDigest: `sha256-${i}`.padEnd(70, 'f'), toolCount: i }));
    const record = testRecord('node-ü', {}, '127.0.0.1:7802');
    const big = { ...record, nodeId: 'node-1', zone: 'zöne-日本', servers };
    const meta = encodeRecordMeta(big);
    assert.ok(Object.keys(meta).length <= 64);
    for (const [key, value] of Object.entries(meta)) {
      assert.match(key, /^[A-Za-z0-9_-]{1,128}$/);
      assert.ok(!key.startsWith('consul-'));
      assert.ok(Buffer.byteLength(value) <= 512, `${key} is ${Buffer.byteLength(value)} bytes`);
    }
    assert.ok(Number(meta[RECORD_META.chunks]) > 1);
    const decoded = decodeRecordMeta(meta);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.record, big);
  });

  it('keeps per-server tool digests only when all of them fit', () => {
    const small = encodeRecordMeta(testRecord('n1'));
    assert.equal(small['tool-digest-echo'], 'sha256-0f1e2d3c4b5a');
    const servers = Array.from({ length: 50 }, (_, i) => ({ name: `s${i}`, path: `/mcp/s${i}`, toolDigest: 'd'.repeat(64), toolCount: 1 }));
    const crowded = encodeRecordMeta({ ...testRecord('n2'), servers });
    assert.ok(!Object.keys(crowded).some((k) => k.startsWith(RECORD_META.toolDigestPrefix)));
    assert.ok(decodeRecordMeta(crowded).ok);
  });

  it('refuses a record that cannot fit in 64 meta pairs', () => {
    const servers = Array.from({ length: 400 }, (_, i) => ({ name: `s${i}`, path: `/mcp/s${i}`, toolDigest: 'd'.repeat(64), toolCount: 1 }));
    assert.throws(() => encodeRecordMeta({ ...testRecord('n3'), servers }), RecordTooLargeError);
  });

  it('round-trips each server\'s affinity, shows the sticky ones readably, and reads older records without it', () => {
    const base = testRecord('n5');
    const record = { ...base, servers: [{ ...base.servers[0]!, affinity: 'sticky' as const }, { ...base.servers[1]!, affinity: 'none' as const }, { name: 'stateful', path: '/mcp/stateful', toolDigest: 'd', toolCount: 9, affinity: 'sticky' as const }] };
    const meta = encodeRecordMeta(record);
    assert.equal(meta[RECORD_META.stickyServers], 'echo,stateful');
    const decoded = decodeRecordMeta(meta);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.record, record);
    // An older agent's record: no affinity anywhere, no readable key, still valid.
    const old = encodeRecordMeta(base);
    assert.equal(old[RECORD_META.stickyServers], undefined);
    const oldDecoded = decodeRecordMeta(old);
    assert.ok(oldDecoded.ok);
    assert.ok(oldDecoded.record.servers.every((s) => s.affinity === undefined));
    // A newer agent's affinity value this reader does not know: the node stays readable, the server reads as 'none'.
    const json = JSON.stringify({ ...base, servers: [{ ...base.servers[0]!, affinity: 'zone-sticky' }] });
    const newer = decodeRecordMeta({ [RECORD_META.chunks]: '1', 'record-0': json, [RECORD_META.sha256]: createHash('sha256').update(json).digest('hex') });
    assert.ok(newer.ok);
    assert.equal(serverAffinity(newer.record.servers[0]!), 'none');
  });

  it('rejects torn, edited or foreign meta', () => {
    const meta = encodeRecordMeta(testRecord('n4'));
    assert.equal(decodeRecordMeta(null).ok, false);
    assert.equal(decodeRecordMeta({ ...meta, [RECORD_META.chunks]: '2' }).ok, false);
    assert.equal(decodeRecordMeta({ ...meta, 'record-0': `${meta['record-0']} ` }).ok, false);
    assert.equal(decodeRecordMeta({ ...meta, [RECORD_META.chunks]: 'x' }).ok, false);
    const notARecord = '{"hello":"world"}';
    const forged = decodeRecordMeta({ [RECORD_META.chunks]: '1', 'record-0': notARecord, [RECORD_META.sha256]: 'bad' });
    assert.equal(forged.ok, false);
  });
});

describe('ping data and health mapping', () => {
  it('maps ping status to the TTL check status', () => {
    assert.equal(pingToCheckStatus(testPing()), 'passing');
    assert.equal(pingToCheckStatus(testPing({ status: 'degraded' })), 'warning');
    assert.equal(pingToCheckStatus(testPing({ status: 'draining' })), 'warning');
  });

  it('reads ping data from check output, also after "TTL expired", and ignores anything else', () => {
    const ping = testPing();
    assert.deepEqual(parsePingOutput(JSON.stringify(ping)), ping);
    assert.deepEqual(parsePingOutput(`TTL expired (last output before timeout follows): ${JSON.stringify(ping)}`), ping);
    assert.equal(parsePingOutput('TTL expired'), undefined);
    assert.equal(parsePingOutput('{"at": "yesterday"}'), undefined);
    assert.equal(parsePingOutput(''), undefined);
    assert.equal(parsePingOutput(null), undefined);
  });

  it('takes the worst check, treating unknown states as critical', () => {
    const check = (Status: string) => ({ CheckID: Status, Status });
    assert.equal(worstHealth([]), 'passing');
    assert.equal(worstHealth([check('passing'), check('warning')]), 'warning');
    assert.equal(worstHealth([check('warning'), check('critical'), check('passing')]), 'critical');
    assert.equal(worstHealth([check('passing'), check('maintenance')]), 'critical');
  });

  it('formats durations the way Consul parses them', () => {
    assert.equal(formatConsulDuration(3000), '3s');
    assert.equal(formatConsulDuration(60_000), '1m');
    assert.equal(formatConsulDuration(1500), '1500ms');
    assert.throws(() => formatConsulDuration(0));
  });
});

describe('Consul settings from the environment', () => {
  it('reads CONSUL_HTTP_ADDR, CONSUL_HTTP_SSL, CONSUL_HTTP_TOKEN and FLOTILLA_CONSUL_SERVICE', () => {
    assert.deepEqual(consulSettingsFromEnv({}), { baseUrl: 'http://127.0.0.1:8500', serviceName: 'flotilla-agent' });
    assert.deepEqual(consulSettingsFromEnv({ CONSUL_HTTP_ADDR: 'consul:8501', CONSUL_HTTP_SSL: 'true', CONSUL_HTTP_TOKEN: ' s3cret ', FLOTILLA_CONSUL_SERVICE: 'mcp' }), {
      baseUrl: 'https://consul:8501',
      serviceName: 'mcp',
      token: 's3cret',
    });
    assert.equal(parseConsulAddress('http://[::1]:8500'), 'http://[::1]:8500');
    assert.throws(() => parseConsulAddress('ftp://x'), /not supported/);
    assert.throws(() => parseConsulAddress('http://x:8500/consul'), /path/);
    assert.throws(() => consulSettingsFromEnv({ CONSUL_HTTP_TOKEN_FILE: '/nonexistent/token' }), /CONSUL_HTTP_TOKEN_FILE/);
  });
});

describe('deploy/consul example', () => {
  it('flotilla-agent.register.json is exactly what the registry sends for the example record', async () => {
    const file = new URL('../../../deploy/consul/flotilla-agent.register.json', import.meta.url);
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as unknown;
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(buildServiceDefinition(EXAMPLE_RECORD, 'flotilla-agent', EXAMPLE_CHECKS))));
  });
});
