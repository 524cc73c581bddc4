/**
 * The conformance suite every registry backend passes. A backend test file calls
 * {@link runRegistryConformance} with a setup that builds clients of a running backend; the suite drives
 * them as agents (through {@link NodeAnnouncer}) and routers (through `watch` and `list`) would.
 *
 * No timed assertions: every expectation waits for its condition with a generous deadline, so a slow,
 * noisy machine makes the suite slower, not red.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { PROTOCOL_VERSION, type NodeRecord, type PingData } from '@flotilla/protocol';
import { createLogger, type Logger } from '@flotilla/telemetry';
import {
  NodeAnnouncer,
  NodeIdCollisionError,
  type AnnouncerState,
  type RegisteredNode,
  type Registry,
  type RegistryTimings,
  type RegistryWatch,
  type RegistryWatchEvent,
} from '../src/index.js';

/** Outage control of a backend. */
export interface ConformanceOutage {
  /** Makes the backend unreachable. */
  stop(): Promise<void>;
  /** Brings it back, with its data or (`loseState`) empty. */
  start(options: { loseState: boolean }): Promise<void>;
  /** Which restarts the backend can do. */
  modes: ReadonlyArray<'keep-state' | 'lose-state'>;
}

/** What a backend test gives the suite. */
export interface ConformanceBackend {
  /** Timings the registries were built with (heartbeat interval, staleness / TTL). */
  timings: RegistryTimings;
  /** A new client of the backend, as one agent or router would hold. The suite closes it. */
  createRegistry(): Promise<Registry>;
  /** host:port of a SERVING grpc.health.v1 server to put in records (Consul runs its gRPC check on it). */
  healthAddress?: string;
  /** Writes a malformed entry for `nodeId` straight into the backend's store, bypassing `Registry`. */
  injectMalformed(nodeId: string): Promise<void>;
  /** Removes what {@link injectMalformed} wrote. */
  removeMalformed(nodeId: string): Promise<void>;
  /** Absent when the backend cannot be stopped by the test (a real Consul): the outage tests are skipped. */
  outage?: ConformanceOutage;
  /** Why outage tests are skipped, when `outage` is absent. */
  outageSkipReason?: string;
}

/** Generous deadline for conditions that need a node to go stale (several TTLs on a busy machine). */
const SLOW_MS = 60_000;

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await condition()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A record for a test node. */
export function testRecord(nodeId: string, overrides: Partial<NodeRecord> = {}, healthAddress?: string): NodeRecord {
  return {
    v: PROTOCOL_VERSION,
    nodeId,
    instanceId: randomUUID(),
    mcpBaseUrl: 'http://127.0.0.1:7801',
    servers: [
      { name: 'echo', path: '/mcp/echo', toolDigest: 'sha256-0f1e2d3c4b5a', toolCount: 3 },
      { name: 'files', path: '/mcp/files', toolDigest: 'sha256-a1b2c3d4e5f6', toolCount: 7 },
    ],
    version: '0.1.0',
    zone: 'zone-a',
    ...(healthAddress ? { healthAddress } : {}),
    capacity: 8,
    startedAt: Date.now(),
    draining: false,
    ...overrides,
  };
}

/** Ping data for a test node. */
export function testPing(overrides: Partial<PingData> = {}): PingData {
  return { at: Date.now(), natsRttMs: 1.5, inflight: 2, queued: 1, eventLoopLagMs: 3, uptimeS: 12, status: 'ok', ...overrides };
}

/** A unique node id, so tests sharing a backend do not see each other's nodes. */
export function uniqueNodeId(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** Records what a watch reports and keeps the latest live view. */
export class WatchRecorder {
  readonly events: Array<{ at: number; event: RegistryWatchEvent }> = [];
  view: RegisteredNode[] | undefined;
  reachable = true;
  readonly watch: RegistryWatch;

  constructor(registry: Registry) {
    this.watch = registry.watch((event) => {
      this.events.push({ at: Date.now(), event });
      if (event.type === 'snapshot') this.view = event.nodes;
      else this.reachable = event.reachable;
    });
  }

  ids(): string[] {
    return (this.view ?? []).map((n) => n.record.nodeId);
  }

  node(nodeId: string): RegisteredNode | undefined {
    return this.view?.find((n) => n.record.nodeId === nodeId);
  }

  has(nodeId: string): boolean {
    return this.ids().includes(nodeId);
  }

  until(what: string, condition: (r: WatchRecorder) => boolean, timeoutMs = 30_000): Promise<void> {
    return waitFor(`watch: ${what}`, () => condition(this), timeoutMs, 50);
  }
}

/** Everything a test starts, released when it ends (even on failure). */
class Scope {
  private readonly cleanups: Array<() => Promise<unknown>> = [];
  constructor(private readonly backend: ConformanceBackend, readonly logger: Logger, t: TestContext) {
    t.after(() => this.dispose());
  }

  async registry(): Promise<Registry> {
    const registry = await this.backend.createRegistry();
    this.cleanups.push(() => registry.close());
    return registry;
  }

  watch(registry: Registry): WatchRecorder {
    const recorder = new WatchRecorder(registry);
    this.cleanups.push(() => recorder.watch.stop());
    return recorder;
  }

  announcer(registry: Registry, record: () => NodeRecord, ping: () => PingData = () => testPing()): { announcer: NodeAnnouncer; states: AnnouncerState[] } {
    const states: AnnouncerState[] = [];
    const announcer = new NodeAnnouncer({
      registry,
      record,
      ping,
      logger: this.logger,
      heartbeatIntervalMs: this.backend.timings.heartbeatIntervalMs,
      maxBackoffMs: 1000,
      onStateChange: (state) => states.push(state),
    });
    this.cleanups.push(() => announcer.stop(true));
    return { announcer, states };
  }

  async dispose(): Promise<void> {
    for (const cleanup of this.cleanups.reverse()) await cleanup().catch(() => {});
  }
}

async function listed(registry: Registry, nodeId: string, includeCritical = false): Promise<RegisteredNode | undefined> {
  return (await registry.list({ includeCritical })).find((n) => n.record.nodeId === nodeId);
}

/**
 * Defines the conformance tests for one backend under `describe(name)`. `setup` runs once before them and
 * returns the backend; `teardown` runs after.
 */
export function runRegistryConformance(name: string, setup: () => Promise<ConformanceBackend>, teardown?: () => Promise<void>): void {
  describe(`registry conformance: ${name}`, () => {
    let backend: ConformanceBackend;
    const logger = createLogger({ name: `conformance-${name}`, level: process.env.LOG_LEVEL ?? 'silent' });
    const scope = (t: TestContext): Scope => new Scope(backend, logger, t);
    const record = (nodeId: string, overrides: Partial<NodeRecord> = {}): NodeRecord => testRecord(nodeId, overrides, backend.healthAddress);

    before(async () => {
      backend = await setup();
    });
    after(async () => {
      await teardown?.();
    });

    it('registers a node whose record and ping data list() returns', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const rec = record(uniqueNodeId('reg'));
      const ping = testPing({ inflight: 5, queued: 4 });
      await registry.register(rec);
      await registry.heartbeat(rec, ping);
      await waitFor('node listed with its ping', async () => (await listed(registry, rec.nodeId))?.ping?.inflight === 5);
      const node = await listed(registry, rec.nodeId);
      assert.ok(node);
      assert.deepEqual(node.record, rec);
      assert.deepEqual(node.ping, ping);
      assert.equal(node.health, 'passing');
    });

    it('round-trips each server\'s affinity to list() and watch, and keeps records without it valid', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const reader = await s.registry();
      const watch = s.watch(reader);
      const base = record(uniqueNodeId('affinity'));
      const sticky: NodeRecord = {
        ...base,
        servers: [{ ...base.servers[0]!, affinity: 'sticky' }, { ...base.servers[1]!, affinity: 'none' }, { name: 'stateful', path: '/mcp/stateful', toolDigest: 'sha256-5e55', toolCount: 9, affinity: 'sticky' }],
      };
      const old = record(uniqueNodeId('no-affinity'));
      for (const rec of [sticky, old]) {
        await registry.register(rec);
        await registry.heartbeat(rec, testPing());
      }
      await watch.until('both nodes seen', (w) => w.has(sticky.nodeId) && w.has(old.nodeId));
      assert.deepEqual(watch.node(sticky.nodeId)?.record, sticky);
      assert.deepEqual((await listed(reader, sticky.nodeId))?.record.servers.map((x) => [x.name, x.affinity]), [['echo', 'sticky'], ['files', 'none'], ['stateful', 'sticky']]);
      const oldListed = await listed(reader, old.nodeId);
      assert.ok(oldListed);
      assert.deepEqual(oldListed.record, old);
      assert.ok(oldListed.record.servers.every((x) => !('affinity' in x)), 'an older record gains no affinity field');
    });

    it('reports a degraded or draining node as warning and keeps it live', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const watcher = s.watch(await s.registry());
      const rec = record(uniqueNodeId('warn'));
      await registry.register(rec);
      await registry.heartbeat(rec, testPing());
      await watcher.until('node passing', (w) => w.node(rec.nodeId)?.health === 'passing');
      await registry.heartbeat(rec, testPing({ status: 'degraded', inflight: 9 }));
      await watcher.until('node warning', (w) => w.node(rec.nodeId)?.health === 'warning');
      await waitFor('list shows warning with degraded ping', async () => {
        const node = await listed(registry, rec.nodeId);
        return node?.health === 'warning' && node.ping?.status === 'degraded' && node.ping.inflight === 9;
      });
      const draining = { ...rec, draining: true };
      await registry.register(draining);
      await registry.heartbeat(draining, testPing({ status: 'draining' }));
      await watcher.until('draining record, still live', (w) => w.node(rec.nodeId)?.record.draining === true);
      assert.equal(watcher.node(rec.nodeId)?.health, 'warning');
    });

    it('keeps a heartbeating node alive for several TTLs', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const rec = record(uniqueNodeId('alive'));
      const { announcer } = s.announcer(registry, () => rec);
      await announcer.start();
      await waitFor('node live', async () => (await listed(registry, rec.nodeId))?.health === 'passing');
      // Sample for three TTLs: a node that heartbeats must never be seen critical or missing.
      const until = Date.now() + 3 * backend.timings.staleAfterMs;
      const seen = new Set<string>();
      while (Date.now() < until) {
        const node = await listed(registry, rec.nodeId, true);
        seen.add(node?.health ?? 'missing');
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual([...seen], ['passing']);
      assert.equal(announcer.status().state, 'registered');
    });

    it('turns a silent node critical and drops it from the live view', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const watcher = s.watch(await s.registry());
      const rec = record(uniqueNodeId('silent'));
      const { announcer } = s.announcer(registry, () => rec);
      await announcer.start();
      await watcher.until('node joined', (w) => w.has(rec.nodeId));
      await announcer.stop(false); // crash: no deregistration
      await watcher.until('silent node left the live view', (w) => !w.has(rec.nodeId), SLOW_MS);
      assert.equal(await listed(registry, rec.nodeId), undefined, 'list() without includeCritical must omit it');
      const critical = await listed(registry, rec.nodeId, true);
      assert.equal(critical?.health, 'critical', 'list({ includeCritical }) shows it critical until reaped');
      assert.equal(critical?.record.instanceId, rec.instanceId);
    });

    it('deregisters a node at once', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const watcher = s.watch(await s.registry());
      const rec = record(uniqueNodeId('dereg'));
      await registry.register(rec);
      await registry.heartbeat(rec, testPing());
      await watcher.until('node joined', (w) => w.has(rec.nodeId));
      await registry.deregister(rec.nodeId);
      await watcher.until('node left', (w) => !w.has(rec.nodeId));
      await waitFor('node gone from list, critical included', async () => (await listed(registry, rec.nodeId, true)) === undefined);
      await registry.deregister(rec.nodeId); // idempotent
    });

    it('watch sees joins and leaves, starting with a snapshot', async (t) => {
      const s = scope(t);
      const watcher = s.watch(await s.registry());
      await watcher.until('first snapshot', (w) => w.view !== undefined);
      assert.equal(watcher.events[0]?.event.type, 'snapshot', 'the first event is a snapshot');
      const a = record(uniqueNodeId('join-a'));
      const b = record(uniqueNodeId('join-b'));
      const { announcer: announcerA } = s.announcer(await s.registry(), () => a);
      const { announcer: announcerB } = s.announcer(await s.registry(), () => b);
      await announcerA.start();
      await watcher.until('a joined', (w) => w.has(a.nodeId));
      await announcerB.start();
      await watcher.until('both joined', (w) => w.has(a.nodeId) && w.has(b.nodeId));
      await announcerA.stop(true);
      await watcher.until('a left, b stays', (w) => !w.has(a.nodeId) && w.has(b.nodeId));
      const viewB = watcher.node(b.nodeId);
      assert.deepEqual(viewB?.record, b);
    });

    it('refuses a node id held by another live instance, and allows the same instance to re-register', async (t) => {
      const s = scope(t);
      const holderRegistry = await s.registry();
      const rec = record(uniqueNodeId('dup'));
      const { announcer } = s.announcer(holderRegistry, () => rec);
      await announcer.start();
      await waitFor('holder live', async () => (await listed(holderRegistry, rec.nodeId))?.health === 'passing');

      const intruder = await s.registry();
      const other = { ...record(rec.nodeId), mcpBaseUrl: 'http://127.0.0.1:7999' };
      await assert.rejects(intruder.register(other), NodeIdCollisionError);
      const { announcer: intruderAnnouncer, states } = s.announcer(intruder, () => other);
      await assert.rejects(intruderAnnouncer.start(), NodeIdCollisionError);
      assert.equal(states.at(-1), 'fatal');
      assert.equal((await listed(holderRegistry, rec.nodeId))?.record.instanceId, rec.instanceId, 'the holder keeps its id');

      await holderRegistry.register({ ...rec, zone: 'zone-b' }); // same instance: a refresh, not a collision

      // Once the holder stops heartbeating and turns critical, another instance may take the id over.
      await announcer.stop(false);
      await waitFor('holder critical', async () => (await listed(intruder, rec.nodeId, true))?.health === 'critical', SLOW_MS);
      await intruder.register(other);
      await intruder.heartbeat(other, testPing());
      await waitFor('new instance live', async () => (await listed(intruder, rec.nodeId))?.record.instanceId === other.instanceId);
    });

    it('ignores malformed records', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const badId = uniqueNodeId('bad');
      await backend.injectMalformed(badId);
      t.after(() => backend.removeMalformed(badId));
      const watcher = s.watch(await s.registry());
      const good = record(uniqueNodeId('good'));
      await registry.register(good);
      await registry.heartbeat(good, testPing());
      await watcher.until('good node live', (w) => w.has(good.nodeId));
      assert.ok(!watcher.has(badId), 'the malformed entry is not in the live view');
      const all = await registry.list({ includeCritical: true });
      assert.ok(all.some((n) => n.record.nodeId === good.nodeId));
      assert.ok(!all.some((n) => n.record.nodeId === badId), 'the malformed entry is not listed');
    });

    it('announcer re-registers a node the registry lost', async (t) => {
      const s = scope(t);
      const registry = await s.registry();
      const watcher = s.watch(await s.registry());
      const rec = record(uniqueNodeId('lost'));
      const { announcer } = s.announcer(registry, () => rec);
      await announcer.start();
      await watcher.until('node joined', (w) => w.has(rec.nodeId));
      // Another client withdraws it behind the announcer's back, as a registry restart or reaping would.
      const other = await s.registry();
      await other.deregister(rec.nodeId);
      await waitFor('node back after re-registration', async () => (await listed(other, rec.nodeId))?.record.instanceId === rec.instanceId);
      await watcher.until('node live again', (w) => w.has(rec.nodeId));
      assert.equal(announcer.status().state, 'registered');
    });

    for (const mode of ['keep-state', 'lose-state'] as const) {
      it(`survives a registry outage (${mode}): the watch keeps its view, reports it, resumes; the announcer recovers`, async (t) => {
        const outage = backend.outage;
        if (!outage || !outage.modes.includes(mode)) {
          t.skip(backend.outageSkipReason ?? `this backend cannot restart in ${mode} mode`);
          return;
        }
        const s = scope(t);
        const watcher = s.watch(await s.registry());
        const rec = record(uniqueNodeId(`outage-${mode}`));
        const { announcer, states } = s.announcer(await s.registry(), () => rec);
        await announcer.start();
        await watcher.until('node joined', (w) => w.has(rec.nodeId));

        await outage.stop();
        await watcher.until('reported unreachable', (w) => !w.reachable, SLOW_MS);
        const downAt = watcher.events.findLastIndex((e) => e.event.type === 'status' && !e.event.reachable);
        await waitFor('announcer noticed', () => states.includes('retrying'), SLOW_MS);
        // While cut off, the watch keeps the last view: no snapshot without our node.
        assert.ok(watcher.has(rec.nodeId), 'last view kept while unreachable');

        await outage.start({ loseState: mode === 'lose-state' });
        await watcher.until('reported reachable again', (w) => w.reachable, SLOW_MS);
        const upAt = watcher.events.findIndex((e, i) => i > downAt && e.event.type === 'status' && e.event.reachable);
        const whileDown = watcher.events.slice(downAt, upAt).filter((e) => e.event.type === 'snapshot');
        assert.deepEqual(whileDown, [], 'no snapshot while the registry was unreachable');
        await watcher.until('node live again', (w) => w.has(rec.nodeId), SLOW_MS);
        await waitFor('announcer registered again', () => announcer.status().state === 'registered', SLOW_MS);
        const node = (await (await s.registry()).list()).find((n) => n.record.nodeId === rec.nodeId);
        assert.equal(node?.record.instanceId, rec.instanceId);
      });
    }

    it('announcer started while the registry is down keeps retrying and joins when it comes up', async (t) => {
      const outage = backend.outage;
      if (!outage) {
        t.skip(backend.outageSkipReason ?? 'this backend cannot be stopped');
        return;
      }
      const s = scope(t);
      const registry = await s.registry();
      await outage.stop();
      let restarted = false;
      t.after(async () => {
        if (!restarted) await outage.start({ loseState: false });
      });
      const rec = record(uniqueNodeId('late'));
      const { announcer, states } = s.announcer(registry, () => rec);
      await announcer.start(); // resolves: unreachable is not fatal
      assert.equal(announcer.status().state, 'retrying');
      await waitFor('several retries', () => states.filter((st) => st === 'retrying').length >= 2, SLOW_MS);
      await outage.start({ loseState: false });
      restarted = true;
      await waitFor('announcer registered', () => announcer.status().state === 'registered', SLOW_MS);
      await waitFor('node live', async () => (await listed(registry, rec.nodeId))?.health === 'passing', SLOW_MS);
    });
  });
}
