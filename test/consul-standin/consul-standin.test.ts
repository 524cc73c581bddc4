/**
 * ConsulRegistry against the Consul stand-in: the registry conformance suite, the Consul-specific
 * behaviour (gRPC check, faults, ACL tokens, record encoding), and checks that the stand-in itself behaves
 * like Consul where the registry depends on it. These runs are against a stand-in, not Consul; see
 * packages/registry/test/consul-real.test.ts for the same suite against a real Consul.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ConsulRegistry,
  ConsulRequestError,
  NodeAnnouncer,
  NodeIdCollisionError,
  RecordTooLargeError,
  RegistryAuthError,
  RegistryConfigError,
  createRegistry,
  parseConsulAddress,
  pingCheckId,
  type AnnouncerState,
  type ConsulRegistryOptions,
  type Registry,
  type RegistryTimings,
} from '../../packages/registry/src/index.js';
import { nextBlockingIndex } from '../../packages/registry/src/consul/ConsulHealthWatch.js';
import { WatchRecorder, runRegistryConformance, testPing, testRecord, uniqueNodeId, waitFor } from '../../packages/registry/test/conformance.js';
import { GrpcHealthServer } from '../../packages/registry/test/support/GrpcHealthServer.js';
import { createLogger } from '../../packages/registry/test/support/testDeps.js';
import { freePort } from '../harness/freePort.js';
import { ConsulStandIn } from './ConsulStandIn.js';

const timings: RegistryTimings = { heartbeatIntervalMs: 300, staleAfterMs: 3000 };
const logger = createLogger({ name: 'consul-standin-test', level: process.env.LOG_LEVEL ?? 'silent' });
const SERVICE = 'flotilla-agent';

function consulRegistry(address: string, extra: Partial<ConsulRegistryOptions> = {}): ConsulRegistry {
  return new ConsulRegistry({
    address,
    logger,
    timings,
    grpcCheckIntervalMs: 1000,
    grpcCheckTimeoutMs: 1000,
    watchWaitMs: 5000,
    watchMaxBackoffMs: 1000,
    ...extra,
  });
}

/** A service under our name whose meta is not a Flotilla record, with a passing TTL check (so only the decoder can keep it out). */
async function putMalformed(baseUrl: string, nodeId: string, token?: string): Promise<void> {
  const res = await fetch(`${baseUrl}/v1/agent/service/register`, {
    method: 'PUT',
    headers: token ? { 'X-Consul-Token': token } : {},
    body: JSON.stringify({
      ID: nodeId,
      Name: SERVICE,
      Port: 9,
      Meta: { 'record-chunks': '1', 'record-0': '{"nodeId": "not closed', 'record-sha256': 'x' },
      Checks: [{ CheckID: `malformed:${nodeId}`, Name: 'always passing', TTL: '1h', Status: 'passing' }],
    }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function json(url: string, init?: RequestInit): Promise<{ status: number; index: string | null; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch {
    // A pooled keep-alive connection to a stand-in that just restarted is dead; one retry opens a new one.
    res = await fetch(url, init);
  }
  const text = await res.text();
  return { status: res.status, index: res.headers.get('x-consul-index'), body: text ? (JSON.parse(text) as unknown) : undefined };
}

// ---------------------------------------------------------------------------------------------------------
// The shared conformance suite.

let conformanceStandIn: ConsulStandIn;
let conformanceHealth: GrpcHealthServer;
runRegistryConformance(
  'consul (stand-in)',
  async () => {
    conformanceHealth = await GrpcHealthServer.start();
    conformanceStandIn = await ConsulStandIn.start({ logger });
    return {
      timings,
      healthAddress: conformanceHealth.address,
      createRegistry: async (): Promise<Registry> => consulRegistry(conformanceStandIn.address),
      injectMalformed: (nodeId) => putMalformed(conformanceStandIn.url, nodeId),
      removeMalformed: async (nodeId) => void (await fetch(`${conformanceStandIn.url}/v1/agent/service/deregister/${nodeId}`, { method: 'PUT' })),
      outage: {
        modes: ['keep-state', 'lose-state'],
        stop: () => conformanceStandIn.stop(),
        async start({ loseState }) {
          if (loseState) conformanceStandIn.loseState();
          await conformanceStandIn.start();
        },
      },
    };
  },
  async () => {
    await conformanceStandIn?.dispose();
    await conformanceHealth?.stop();
  },
);

// ---------------------------------------------------------------------------------------------------------
// Consul-specific behaviour of ConsulRegistry.

describe('ConsulRegistry on the Consul stand-in', () => {
  let standIn: ConsulStandIn;
  let health: GrpcHealthServer;
  // Released after each test, so no watch of an earlier test consumes the faults a later one injects.
  let cleanups: Array<() => Promise<unknown>> = [];
  const track = <T extends { close(): Promise<void> } | NodeAnnouncer>(x: T): T => {
    cleanups.push(() => (x instanceof NodeAnnouncer ? x.stop(true) : x.close()));
    return x;
  };
  const announce = (registry: Registry, rec: ReturnType<typeof testRecord>, ping = () => testPing()) => {
    const states: AnnouncerState[] = [];
    const announcer = track(
      new NodeAnnouncer({ registry, record: () => rec, ping, logger, heartbeatIntervalMs: timings.heartbeatIntervalMs, maxBackoffMs: 1000, onStateChange: (s) => states.push(s) }),
    );
    return { announcer, states };
  };

  before(async () => {
    health = await GrpcHealthServer.start();
    standIn = await ConsulStandIn.start({ logger });
  });
  afterEach(async () => {
    const pending = cleanups.reverse();
    cleanups = [];
    for (const c of pending) await c().catch(() => {});
    standIn.clearFaults();
  });
  after(async () => {
    await standIn.dispose();
    await health.stop();
  });

  it('registers the documented service shape: ID, MCP address, server tags, record meta, TTL and gRPC checks', async () => {
    const registry = track(consulRegistry(standIn.address));
    const rec = testRecord(uniqueNodeId('shape'), {}, health.address);
    const ping = testPing({ inflight: 3 });
    await registry.register(rec);
    await registry.heartbeat(rec, ping);
    const { body: services } = await json(`${standIn.url}/v1/agent/services`);
    const service = (services as Record<string, { ID: string; Service: string; Address: string; Port: number; Tags: string[]; Meta: Record<string, string> }>)[rec.nodeId];
    assert.ok(service);
    assert.equal(service.Service, SERVICE);
    assert.equal(service.Address, '127.0.0.1');
    assert.equal(service.Port, 7801);
    assert.deepEqual(service.Tags, ['echo', 'files']);
    assert.equal(service.Meta['instance-id'], rec.instanceId);
    assert.equal(service.Meta['grpc-health'], health.address);
    assert.equal(service.Meta['zone'], 'zone-a');
    assert.equal(service.Meta['capacity'], '8');
    assert.equal(service.Meta['tool-digest-echo'], 'sha256-0f1e2d3c4b5a');
    const { body: entries, index } = await json(`${standIn.url}/v1/health/service/${SERVICE}`);
    assert.match(index ?? '', /^\d+$/);
    const entry = (entries as Array<{ Service: { ID: string }; Checks: Array<{ CheckID: string; Type: string; Output: string; Status: string }> }>).find((e) => e.Service.ID === rec.nodeId);
    const pingCheck = entry?.Checks.find((c) => c.CheckID === pingCheckId(rec));
    assert.equal(pingCheck?.Type, 'ttl');
    assert.deepEqual(JSON.parse(pingCheck?.Output ?? ''), ping);
    assert.ok(entry?.Checks.some((c) => c.Type === 'grpc'), 'a gRPC check is registered');
  });

  it('turns a node critical while its gRPC health is NOT_SERVING or down, and live again when SERVING', async () => {
    const own = await GrpcHealthServer.start();
    const registry = track(consulRegistry(standIn.address));
    const watcher = new WatchRecorder(track(consulRegistry(standIn.address)));
    cleanups.push(() => watcher.watch.stop());
    const rec = testRecord(uniqueNodeId('grpc'), {}, own.address);
    const { announcer } = announce(registry, rec);
    await announcer.start();
    await watcher.until('node live', (w) => w.node(rec.nodeId)?.health === 'passing');
    own.setStatus('NOT_SERVING');
    await watcher.until('node left the live view', (w) => !w.has(rec.nodeId));
    const critical = (await registry.list({ includeCritical: true })).find((n) => n.record.nodeId === rec.nodeId);
    assert.equal(critical?.health, 'critical');
    assert.ok(critical?.ping, 'the heartbeat (TTL) check still carries ping data');
    own.setStatus('SERVING');
    await watcher.until('node live again', (w) => w.node(rec.nodeId)?.health === 'passing');
    await own.stop();
    await watcher.until('node left when its health server is gone', (w) => !w.has(rec.nodeId));
  });

  it('keeps the last ping of a node whose TTL expired (Consul quotes it after "TTL expired")', async () => {
    const registry = track(consulRegistry(standIn.address));
    const rec = testRecord(uniqueNodeId('expired'));
    const ping = testPing({ queued: 6 });
    await registry.register(rec);
    await registry.heartbeat(rec, ping);
    await waitFor('critical after TTL', async () => (await registry.list({ includeCritical: true })).find((n) => n.record.nodeId === rec.nodeId)?.health === 'critical', 60_000);
    const node = (await registry.list({ includeCritical: true })).find((n) => n.record.nodeId === rec.nodeId);
    assert.deepEqual(node?.ping, ping);
  });

  it('rides out 5xx answers: the announcer retries, the watch keeps its view and resumes', async () => {
    const registry = track(consulRegistry(standIn.address));
    const watcher = new WatchRecorder(track(consulRegistry(standIn.address)));
    cleanups.push(() => watcher.watch.stop());
    const rec = testRecord(uniqueNodeId('5xx'));
    const { announcer, states } = announce(registry, rec);
    await announcer.start();
    await watcher.until('node live', (w) => w.has(rec.nodeId));

    standIn.injectFault({ method: 'PUT', path: /^\/v1\/agent\/check\/update\//, status: 500, body: 'rpc error making call: No cluster leader', times: 3 });
    await waitFor('announcer retrying', () => states.includes('retrying'));
    await waitFor('announcer registered again', () => announcer.status().state === 'registered' && states.at(-1) === 'registered');

    const before = watcher.events.length;
    standIn.injectFault({ method: 'GET', path: /^\/v1\/health\/service\//, target: /index=/, status: 503, body: 'Service Unavailable', times: 2 });
    await watcher.until('watch reported the failure', (w) => w.events.slice(before).some((e) => e.event.type === 'status' && !e.event.reachable), 30_000);
    await watcher.until('watch recovered', (w) => w.reachable, 30_000);
    const statusEvent = watcher.events.slice(before).find((e) => e.event.type === 'status' && !e.event.reachable);
    assert.match(statusEvent?.event.type === 'status' ? statusEvent.event.error ?? '' : '', /HTTP 503/);
    assert.ok(watcher.has(rec.nodeId), 'the view survived the failures');
  });

  it('survives garbage answers without crashing', async () => {
    const registry = track(consulRegistry(standIn.address));
    standIn.injectFault({ method: 'GET', path: /^\/v1\/health\/service\//, status: 200, body: '<html>proxy error</html>', contentType: 'text/html', times: 1 });
    await assert.rejects(registry.list(), (err: unknown) => err instanceof ConsulRequestError && err.kind === 'bad-answer');
    standIn.injectFault({ method: 'GET', path: /^\/v1\/health\/service\//, status: 200, body: '{"not": "an array"', contentType: 'application/json', times: 1 });
    await assert.rejects(registry.list(), (err: unknown) => err instanceof ConsulRequestError && err.kind === 'bad-answer');
    standIn.injectFault({ method: 'GET', path: /^\/v1\/health\/service\//, status: 200, body: '[{"Node": {"Node": "x"}, "Service": {"ID": 5}}, 42]', contentType: 'application/json', times: 1 });
    assert.deepEqual(await registry.list(), [], 'entries of the wrong shape are skipped');

    const watcher = new WatchRecorder(track(consulRegistry(standIn.address)));
    cleanups.push(() => watcher.watch.stop());
    await watcher.until('first snapshot', (w) => w.view !== undefined);
    standIn.injectFault({ method: 'GET', path: /^\/v1\/health\/service\//, target: /index=/, status: 200, body: 'garbage', contentType: 'application/json', times: 2 });
    // The watch is parked in a blocking query; a registration wakes it into the garbage.
    const rec = testRecord(uniqueNodeId('garbage'));
    await registry.register(rec);
    await registry.heartbeat(rec, testPing());
    await watcher.until('garbage reported', (w) => w.events.some((e) => e.event.type === 'status' && !e.event.reachable && /not JSON/.test(e.event.error ?? '')));
    await watcher.until('node seen after recovery', (w) => w.reachable && w.has(rec.nodeId));

    standIn.injectFault({ method: 'PUT', path: /^\/v1\/agent\/service\/register$/, status: 400, body: 'Invalid Service Meta: Key contains invalid characters', times: 2 });
    const bad = testRecord(uniqueNodeId('rejected'));
    await assert.rejects(registry.register(bad), RegistryConfigError);
    const { announcer, states } = announce(track(consulRegistry(standIn.address)), bad);
    await assert.rejects(announcer.start(), RegistryConfigError);
    assert.equal(states.at(-1), 'fatal');
  });

  it('carries a large record across several meta values and refuses one too large for Consul', async () => {
    const registry = track(consulRegistry(standIn.address));
    const servers = Array.from({ length: 25 }, (_, i) => ({ name: `server-${i}`, path: `/mcp/server-${i}`, toolDigest: `sha256-${'ab'.repeat(32)}`, toolCount: i }));
    const rec = testRecord(uniqueNodeId('large'), { servers, zone: 'zoné-ü' });
    await registry.register(rec);
    await registry.heartbeat(rec, testPing());
    const node = (await registry.list()).find((n) => n.record.nodeId === rec.nodeId);
    assert.deepEqual(node?.record, rec);
    const { body: services } = await json(`${standIn.url}/v1/agent/services`);
    const meta = (services as Record<string, { Meta: Record<string, string> }>)[rec.nodeId]?.Meta ?? {};
    assert.ok(Number(meta['record-chunks']) > 1, 'the record spans several meta values');
    assert.ok(Object.values(meta).every((v) => Buffer.byteLength(v) <= 512));

    const huge = testRecord(uniqueNodeId('huge'), { servers: Array.from({ length: 300 }, (_, i) => ({ ...servers[0]!, name: `s-${i}`, path: `/mcp/s-${i}` })) });
    await assert.rejects(registry.register(huge), RecordTooLargeError);
    const { announcer, states } = announce(track(consulRegistry(standIn.address)), huge);
    await assert.rejects(announcer.start(), RecordTooLargeError);
    assert.equal(states.at(-1), 'fatal');
  });

  it('a second process on the same Consul agent: the old one hits an unknown check, re-registers and is refused', async () => {
    const a = track(consulRegistry(standIn.address));
    const rec = testRecord(uniqueNodeId('takeover'));
    await a.register(rec);
    await a.heartbeat(rec, testPing());
    // The holder pauses (no heartbeats) until it turns critical; a new process takes the id over.
    await waitFor('holder critical', async () => (await a.list({ includeCritical: true })).find((n) => n.record.nodeId === rec.nodeId)?.health === 'critical', 60_000);
    const b = track(consulRegistry(standIn.address));
    const newer = { ...rec, instanceId: `${rec.instanceId}-2` };
    await b.register(newer);
    await b.heartbeat(newer, testPing());
    // The old process wakes up: its check id is gone, and the id is held by a live instance.
    const { announcer, states } = announce(a, rec);
    await assert.rejects(announcer.start(), NodeIdCollisionError);
    assert.equal(states.at(-1), 'fatal');
    await announcer.stop(true);
    const holder = (await b.list()).find((n) => n.record.nodeId === rec.nodeId);
    assert.equal(holder?.record.instanceId, newer.instanceId, 'the refused process did not deregister the new holder');
  });

  it('createRegistry reads CONSUL_HTTP_ADDR (host:port or URL) and FLOTILLA_CONSUL_SERVICE', async () => {
    for (const addr of [standIn.address, standIn.url]) {
      const registry = track(createRegistry({ kind: 'consul', logger, timings, env: { CONSUL_HTTP_ADDR: addr, FLOTILLA_CONSUL_SERVICE: 'flotilla-agent-env' } }));
      assert.equal(registry.kind, 'consul');
      const rec = testRecord(uniqueNodeId('env'));
      await registry.register(rec);
      await registry.heartbeat(rec, testPing());
      assert.ok((await registry.list()).some((n) => n.record.nodeId === rec.nodeId));
      const { body } = await json(`${standIn.url}/v1/health/service/flotilla-agent-env`);
      assert.ok((body as Array<{ Service: { ID: string } }>).some((e) => e.Service.ID === rec.nodeId));
      await registry.deregister(rec.nodeId);
    }
    assert.equal(parseConsulAddress('127.0.0.1:8500'), 'http://127.0.0.1:8500');
    assert.equal(parseConsulAddress('consul.local'), 'http://consul.local:8500');
    assert.equal(parseConsulAddress('https://consul.local:8501'), 'https://consul.local:8501');
    assert.equal(parseConsulAddress('consul.local:8501', true), 'https://consul.local:8501');
    assert.throws(() => parseConsulAddress('unix:///tmp/consul.sock'), /unix sockets/);
  });

  it('resets the blocking index when it goes backwards and never blocks on 0 (Consul blocking-query rules)', () => {
    assert.equal(nextBlockingIndex(0n, 42n), 42n);
    assert.equal(nextBlockingIndex(42n, 42n), 42n);
    assert.equal(nextBlockingIndex(42n, 7n), 0n);
    assert.equal(nextBlockingIndex(0n, 0n), 1n);
    assert.equal(nextBlockingIndex(5n, undefined), 0n);
  });

  it('runs as a process from main.ts', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./main.ts', import.meta.url)), '--port', String(port)], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await waitFor(`"consul stand-in ready" from main.ts (stderr: ${err.slice(-500)})`, () => out.includes('consul stand-in ready'), 60_000);
      const registry = track(consulRegistry(`127.0.0.1:${port}`));
      const rec = testRecord(uniqueNodeId('process'));
      await registry.register(rec);
      await registry.heartbeat(rec, testPing());
      assert.ok((await registry.list()).some((n) => n.record.nodeId === rec.nodeId));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('ConsulRegistry with Consul ACLs (stand-in)', () => {
  let standIn: ConsulStandIn;
  const closers: Registry[] = [];
  const open = (token?: string): ConsulRegistry => {
    const r = consulRegistry(standIn.address, token ? { token } : {});
    closers.push(r);
    return r;
  };
  before(async () => {
    standIn = await ConsulStandIn.start({ logger, acl: { tokens: { 'agent-secret': 'write', 'router-secret': 'read' } } });
  });
  after(async () => {
    for (const r of closers) await r.close();
    await standIn.dispose();
  });

  it('names CONSUL_HTTP_TOKEN when Consul rejects the token, and the announcer gives up at start', async () => {
    const rec = testRecord(uniqueNodeId('acl'));
    await assert.rejects(open('wrong-secret').register(rec), (err: unknown) => {
      assert.ok(err instanceof RegistryAuthError);
      assert.match(err.message, /CONSUL_HTTP_TOKEN/);
      assert.match(err.message, /ACL not found/);
      return true;
    });
    await assert.rejects(open('router-secret').register(rec), (err: unknown) => {
      assert.ok(err instanceof RegistryAuthError);
      assert.match(err.message, /Permission denied/);
      assert.match(err.message, /CONSUL_HTTP_TOKEN.*service:write on "flotilla-agent"/);
      return true;
    });
    await assert.rejects(open().register(rec), /no token is set: set CONSUL_HTTP_TOKEN/);
    const viaEnv = createRegistry({ kind: 'consul', logger, timings, env: { CONSUL_HTTP_ADDR: standIn.address, CONSUL_HTTP_TOKEN: 'wrong-secret' } });
    closers.push(viaEnv);
    const states: AnnouncerState[] = [];
    const announcer = new NodeAnnouncer({ registry: viaEnv, record: () => rec, ping: () => testPing(), logger, onStateChange: (s) => states.push(s) });
    await assert.rejects(announcer.start(), (err: unknown) => err instanceof RegistryAuthError && /CONSUL_HTTP_TOKEN/.test(err.message));
    assert.equal(states.at(-1), 'fatal');
    await announcer.stop();

    const agent = open('agent-secret');
    await agent.register(rec);
    await agent.heartbeat(rec, testPing());
    assert.ok((await open('router-secret').list()).some((n) => n.record.nodeId === rec.nodeId), 'a read token lists nodes');
    assert.deepEqual(await open().list(), [], 'anonymous reads are filtered, as Consul does');

    const watcher = new WatchRecorder(open('wrong-secret'));
    await watcher.until('watch reports the rejected token', (w) => w.events.some((e) => e.event.type === 'status' && !e.event.reachable && /CONSUL_HTTP_TOKEN/.test(e.event.error ?? '')));
    await watcher.watch.stop();
    await agent.deregister(rec.nodeId);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The stand-in itself: Consul behaviour the registry relies on.

describe('Consul stand-in fidelity', () => {
  let standIn: ConsulStandIn;
  before(async () => {
    standIn = await ConsulStandIn.start({ logger, checkUpdateIntervalMs: 60_000, deregisterCriticalMinimumMs: 500, reapIntervalMs: 200 });
  });
  after(() => standIn.dispose());
  const put = (path: string, body?: unknown) => fetch(`${standIn.url}${path}`, { method: 'PUT', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it('answers blocking queries on a change, with a higher X-Consul-Index', async () => {
    const first = await json(`${standIn.url}/v1/health/service/blocking`);
    const index = Number(first.index);
    assert.ok(index >= 1);
    const parked = json(`${standIn.url}/v1/health/service/blocking?index=${index}&wait=30s`);
    await put('/v1/agent/service/register', { Name: 'blocking', ID: 'b1', Checks: [{ CheckID: 'b1-ttl', TTL: '30s' }] });
    const woken = await parked;
    assert.ok(Number(woken.index) > index);
    assert.equal((woken.body as unknown[]).length, 1);
    const timedOut = await json(`${standIn.url}/v1/health/service/blocking?index=${woken.index}&wait=200ms`);
    assert.equal(timedOut.index, woken.index, 'a wait that times out returns the same index');
  });

  it('filters warning and critical instances with ?passing, and keeps them without it', async () => {
    await put('/v1/agent/service/register', { Name: 'pass', ID: 'p-ok', Checks: [{ CheckID: 'p-ok-ttl', TTL: '1m', Status: 'passing' }] });
    await put('/v1/agent/service/register', { Name: 'pass', ID: 'p-warn', Checks: [{ CheckID: 'p-warn-ttl', TTL: '1m', Status: 'warning' }] });
    const ids = (r: { body: unknown }) => (r.body as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID);
    assert.deepEqual(ids(await json(`${standIn.url}/v1/health/service/pass?passing`)), ['p-ok']);
    assert.deepEqual(ids(await json(`${standIn.url}/v1/health/service/pass?passing=false`)), ['p-ok', 'p-warn']);
    assert.deepEqual(ids(await json(`${standIn.url}/v1/health/service/pass`)), ['p-ok', 'p-warn']);
  });

  it('defers output-only check updates by check_update_interval and writes status changes at once', async () => {
    await put('/v1/agent/service/register', { Name: 'defer', ID: 'd1', Checks: [{ CheckID: 'd1-ttl', TTL: '1m' }] });
    const output = async () => ((await json(`${standIn.url}/v1/health/service/defer`)).body as Array<{ Checks: Array<{ CheckID: string; Output: string; Status: string }> }>)[0]?.Checks.find((c) => c.CheckID === 'd1-ttl');
    await put('/v1/agent/check/update/d1-ttl', { Status: 'passing', Output: 'one' });
    assert.deepEqual({ ...(await output()) }, { ...(await output()), Status: 'passing', Output: 'one' });
    await put('/v1/agent/check/update/d1-ttl', { Status: 'passing', Output: 'two' });
    assert.equal((await output())?.Output, 'one', 'same status: the catalog keeps the old output for now');
    const agentChecks = (await json(`${standIn.url}/v1/agent/checks`)).body as Record<string, { Output: string }>;
    assert.equal(agentChecks['d1-ttl']?.Output, 'two', 'the agent has the new output');
    await put('/v1/agent/check/update/d1-ttl', { Status: 'warning', Output: 'three' });
    assert.deepEqual([(await output())?.Status, (await output())?.Output], ['warning', 'three']);
  });

  it('keeps a re-registered check status, and replace-existing-checks drops checks left out', async () => {
    await put('/v1/agent/service/register', { Name: 'rereg', ID: 'r1', Checks: [{ CheckID: 'r1-a', TTL: '1m' }, { CheckID: 'r1-b', TTL: '1m' }] });
    await put('/v1/agent/check/pass/r1-a');
    await put('/v1/agent/service/register', { Name: 'rereg', ID: 'r1', Checks: [{ CheckID: 'r1-a', TTL: '1m' }] });
    let checks = ((await json(`${standIn.url}/v1/health/service/rereg`)).body as Array<{ Checks: Array<{ CheckID: string; Status: string }> }>)[0]?.Checks ?? [];
    assert.equal(checks.find((c) => c.CheckID === 'r1-a')?.Status, 'passing');
    assert.ok(checks.some((c) => c.CheckID === 'r1-b'), 'without replace-existing-checks the other check stays');
    await put('/v1/agent/service/register?replace-existing-checks=true', { Name: 'rereg', ID: 'r1', Checks: [{ CheckID: 'r1-a', TTL: '1m' }] });
    checks = ((await json(`${standIn.url}/v1/health/service/rereg`)).body as Array<{ Checks: Array<{ CheckID: string; Status: string }> }>)[0]?.Checks ?? [];
    assert.deepEqual(checks.map((c) => c.CheckID).sort(), ['r1-a', 'serfHealth']);
  });

  it('reaps a service critical for longer than DeregisterCriticalServiceAfter, and only that one', async () => {
    type Entry = { Service: { ID: string }; Checks: Array<{ CheckID: string; Status: string }> };
    const entries = async (): Promise<Entry[]> => (await json(`${standIn.url}/v1/health/service/reap`)).body as Entry[];
    // Two services with the same reaping rule and a passing check that cannot expire during the test.
    for (const id of ['reap-1', 'reap-keep']) {
      const res = await put('/v1/agent/service/register', { Name: 'reap', ID: id, Checks: [{ CheckID: `${id}-ttl`, TTL: '10m', Status: 'passing', DeregisterCriticalServiceAfter: '300ms' }] });
      assert.equal(res.status, 200, await res.text());
    }
    const registered = await entries();
    assert.deepEqual(registered.map((e) => e.Service.ID).sort(), ['reap-1', 'reap-keep'], 'both registered before anything is reaped');
    assert.ok(registered.every((e) => e.Checks.find((c) => c.CheckID === `${e.Service.ID}-ttl`)?.Status === 'passing'), JSON.stringify(registered));
    // Only reap-1 turns critical; it goes once critical for longer than its DeregisterCriticalServiceAfter.
    assert.equal((await put('/v1/agent/check/fail/reap-1-ttl')).status, 200);
    await waitFor('reap-1 reaped', async () => !(await entries()).some((e) => e.Service.ID === 'reap-1'), 30_000);
    const services = (await json(`${standIn.url}/v1/agent/services`)).body as Record<string, unknown>;
    assert.equal(services['reap-1'], undefined, 'deregistered from the agent too');
    const left = await entries();
    assert.deepEqual(left.map((e) => e.Service.ID), ['reap-keep'], 'a passing service with the same rule stays');
    assert.equal(left[0]!.Checks.find((c) => c.CheckID === 'reap-keep-ttl')?.Status, 'passing');
  });

  it('validates registrations and check updates like Consul', async () => {
    let res = await put('/v1/agent/service/register', { Name: 'v', Meta: { 'bad key': 'x' } });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Invalid Service Meta/);
    res = await put('/v1/agent/service/register', { Name: 'v', Meta: { k: 'x'.repeat(513) } });
    assert.equal(res.status, 400);
    res = await put('/v1/agent/service/register', { ID: 'no-name' });
    assert.equal(await res.text(), 'Missing service name');
    res = await put('/v1/agent/service/register', { Name: 'v', Checks: [{ TTL: 'ten seconds' }] });
    assert.match(await res.text(), /invalid duration/);
    res = await put('/v1/agent/check/update/nope', { Status: 'passing' });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /Unknown check ID "nope"/);
    res = await put('/v1/agent/service/register', { Name: 'v', ID: 'v1', Checks: [{ CheckID: 'v1-ttl', TTL: '1m' }] });
    assert.equal(res.status, 200);
    res = await put('/v1/agent/check/update/v1-ttl', { Status: 'fine' });
    assert.equal(res.status, 400);
    res = await put('/v1/agent/service/deregister/unknown-service');
    assert.equal(res.status, 404);
    res = await fetch(`${standIn.url}/v1/agent/check/update/v1-ttl`, { method: 'GET' });
    assert.equal(res.status, 405);
  });

  it('comes back from a state loss with a lower index', async () => {
    await put('/v1/agent/service/register', { Name: 'idx', ID: 'i1', Checks: [{ CheckID: 'i1-ttl', TTL: '1m' }] });
    const before = Number((await json(`${standIn.url}/v1/health/service/idx`)).index);
    await standIn.restart({ loseState: true });
    const after = await json(`${standIn.url}/v1/health/service/idx`);
    assert.ok(Number(after.index) < before, `index went backwards (${before} → ${after.index})`);
    assert.deepEqual(after.body, []);
  });
});
