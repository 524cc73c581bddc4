import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  NodeRecordSchema,
  PingDataSchema,
  decodeJson,
  encodeJson,
  subjects,
  type NodeRecord,
  type PingData,
} from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { z } from 'zod';
import {
  DEFAULT_REGISTRY_TIMINGS,
  NodeIdCollisionError,
  NodeNotRegisteredError,
  type NodeHealth,
  type RegisteredNode,
  type Registry,
  type RegistryTimings,
  type RegistryWatch,
  type RegistryWatchEvent,
} from '../Registry.js';

/** Value stored under `nodes.<nodeId>` in the registry bucket. */
const KvNodeValueSchema = z.object({ record: NodeRecordSchema, ping: PingDataSchema.optional() });
type KvNodeValue = z.infer<typeof KvNodeValueSchema>;

/** Options for {@link NatsKvRegistry}. */
export interface NatsKvRegistryOptions {
  /** Subject prefix; the bucket is `<prefix>_nodes`. */
  prefix?: string;
  timings?: Partial<RegistryTimings>;
  /** Bucket-level TTL, ms: records of nodes that vanished without deregistering are purged after it. */
  bucketTtlMs?: number;
  logger: Logger;
}

const KEY_PREFIX = 'nodes.';

/**
 * Registry backend on a NATS JetStream KV bucket: no service beyond nats-server. nats-server 2.9 has
 * bucket TTL but neither per-key TTL nor expiry events, so liveness is judged by heartbeat age: a record
 * whose last heartbeat is older than `staleAfterMs` is critical and leaves the watch's live view.
 */
export class NatsKvRegistry implements Registry {
  readonly kind = 'nats-kv';
  private readonly bucket: string;
  private readonly timings: RegistryTimings;
  private kvPromise: Promise<KV> | undefined;
  /** Last KV revision we wrote per node, for compare-and-set heartbeats. */
  private readonly revisions = new Map<string, number>();

  constructor(private readonly nc: NatsConnection, private readonly options: NatsKvRegistryOptions) {
    this.bucket = subjects(options.prefix).registryBucket;
    this.timings = { ...DEFAULT_REGISTRY_TIMINGS, ...options.timings };
  }

  private kv(): Promise<KV> {
    this.kvPromise ??= new Kvm(this.nc)
      .create(this.bucket, { history: 1, ttl: this.options.bucketTtlMs ?? 5 * 60_000 })
      .catch((err: unknown) => {
        this.kvPromise = undefined;
        throw err;
      });
    return this.kvPromise;
  }

  async register(record: NodeRecord): Promise<void> {
    const kv = await this.kv();
    const key = KEY_PREFIX + record.nodeId;
    const existing = await kv.get(key);
    const current = existing && existing.operation === 'PUT' ? this.decode(existing) : undefined;
    if (current && current.record.instanceId !== record.instanceId && this.ageMs(existing!) < this.timings.staleAfterMs) {
      throw new NodeIdCollisionError(record.nodeId, `instance ${current.record.instanceId} at ${current.record.mcpBaseUrl}`);
    }
    const value: KvNodeValue = { record, ...(current?.record.instanceId === record.instanceId && current.ping ? { ping: current.ping } : {}) };
    this.revisions.set(record.nodeId, await kv.put(key, encodeJson(value)));
  }

  async heartbeat(record: NodeRecord, ping: PingData): Promise<void> {
    const kv = await this.kv();
    const key = KEY_PREFIX + record.nodeId;
    const revision = this.revisions.get(record.nodeId);
    if (revision === undefined) throw new NodeNotRegisteredError(record.nodeId);
    try {
      this.revisions.set(record.nodeId, await kv.update(key, encodeJson({ record, ping } satisfies KvNodeValue), revision));
    } catch (err) {
      // The compare-and-set failed: the key was deleted, expired, or written by someone else.
      const entry = await kv.get(key);
      const current = entry && entry.operation === 'PUT' ? this.decode(entry) : undefined;
      this.revisions.delete(record.nodeId);
      if (current && current.record.instanceId !== record.instanceId) {
        throw new NodeIdCollisionError(record.nodeId, `instance ${current.record.instanceId} took over the id`);
      }
      if (!current) throw new NodeNotRegisteredError(record.nodeId);
      throw err;
    }
  }

  async deregister(nodeId: string): Promise<void> {
    const kv = await this.kv();
    this.revisions.delete(nodeId);
    await kv.delete(KEY_PREFIX + nodeId);
  }

  async list(options: { includeCritical?: boolean } = {}): Promise<RegisteredNode[]> {
    const kv = await this.kv();
    const keys: string[] = [];
    for await (const key of await kv.keys(`${KEY_PREFIX}*`)) keys.push(key);
    const nodes: RegisteredNode[] = [];
    for (const key of keys) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      const value = this.decode(entry);
      if (!value) continue;
      const node = this.toNode(value, entry.created.getTime());
      if (options.includeCritical || node.health !== 'critical') nodes.push(node);
    }
    return nodes.sort((a, b) => a.record.nodeId.localeCompare(b.record.nodeId));
  }

  watch(listener: (event: RegistryWatchEvent) => void): RegistryWatch {
    return new NatsKvWatch(this.nc, () => this.kv(), this.timings, listener, this.options.logger, (e) => this.decode(e), (v, at) =>
      this.toNode(v, at),
    );
  }

  async close(): Promise<void> {
    this.revisions.clear();
  }

  private ageMs(entry: KvEntry): number {
    return Date.now() - entry.created.getTime();
  }

  private decode(entry: KvEntry): KvNodeValue | undefined {
    const decoded = decodeJson(KvNodeValueSchema, entry.value);
    if (!decoded.ok) {
      this.options.logger.warn({ key: entry.key, error: decoded.error }, 'ignoring malformed registry record');
      return undefined;
    }
    return decoded.value;
  }

  private toNode(value: KvNodeValue, heartbeatAt: number): RegisteredNode {
    const stale = Date.now() - heartbeatAt > this.timings.staleAfterMs;
    const health: NodeHealth = stale ? 'critical' : value.ping && value.ping.status !== 'ok' ? 'warning' : 'passing';
    return { record: value.record, ...(value.ping ? { ping: value.ping } : {}), health, lastHeartbeatAt: heartbeatAt };
  }
}

/** One watch over the registry bucket, with the staleness sweep that NATS KV cannot do server-side. */
class NatsKvWatch implements RegistryWatch {
  private readonly entries = new Map<string, { value: KvNodeValue; seenAt: number }>();
  private lastEmitted = '';
  private stopped = false;
  private reachable = true;
  private stopIterator: (() => void) | undefined;
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: () => Promise<KV>,
    private readonly timings: RegistryTimings,
    private readonly listener: (event: RegistryWatchEvent) => void,
    private readonly logger: Logger,
    private readonly decode: (e: KvEntry) => KvNodeValue | undefined,
    private readonly toNode: (v: KvNodeValue, at: number) => RegisteredNode,
  ) {
    this.sweep = setInterval(() => this.emit(), Math.max(100, Math.floor(timings.staleAfterMs / 6)));
    this.sweep.unref();
    void this.followStatus();
    void this.run();
  }

  private async followStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.stopped) break;
      if (s.type === 'disconnect' && this.reachable) {
        this.reachable = false;
        this.listener({ type: 'status', reachable: false, error: 'NATS connection lost' });
      } else if (s.type === 'reconnect') {
        // Heartbeats could not arrive while we were cut off: give every node a fresh grace period.
        const now = Date.now();
        for (const e of this.entries.values()) e.seenAt = Math.max(e.seenAt, now);
        this.reachable = true;
        this.listener({ type: 'status', reachable: true });
      }
    }
  }

  private async run(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      try {
        const kv = await this.kv();
        const iter = await kv.watch({ key: `${KEY_PREFIX}*` });
        this.stopIterator = () => iter.stop();
        if (!this.reachable) {
          this.reachable = true;
          this.listener({ type: 'status', reachable: true });
        }
        let initialDone = false;
        if ((await kv.status()).values === 0) {
          // An empty bucket yields no initial entries, so the first snapshot would wait for the first join.
          initialDone = true;
          this.emit(true);
        }
        for await (const entry of iter) {
          const nodeId = entry.key.slice(KEY_PREFIX.length);
          if (entry.operation !== 'PUT') {
            this.entries.delete(nodeId);
          } else {
            const value = this.decode(entry);
            if (value) this.entries.set(nodeId, { value, seenAt: entry.isUpdate ? Date.now() : entry.created.getTime() });
          }
          if (entry.delta === 0 || entry.isUpdate) initialDone = true;
          if (initialDone) this.emit();
        }
        if (!initialDone) this.emit();
        if (this.stopped) return;
      } catch (err) {
        if (this.stopped) return;
        if (this.reachable) {
          this.reachable = false;
          this.listener({ type: 'status', reachable: false, error: (err as Error).message });
        }
        this.logger.debug({ err }, 'registry watch failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(5000, backoff * 2);
      }
    }
  }

  private emit(force = false): void {
    if (this.stopped) return;
    if (!this.reachable && this.lastEmitted) return; // keep the last known view while cut off
    const nodes = [...this.entries.values()]
      .map((e) => this.toNode(e.value, e.seenAt))
      .filter((n) => n.health !== 'critical')
      .sort((a, b) => a.record.nodeId.localeCompare(b.record.nodeId));
    const key = JSON.stringify(nodes.map((n) => [n.record, n.health]));
    if (key === this.lastEmitted && !force) return;
    this.lastEmitted = key;
    this.listener({ type: 'snapshot', nodes });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweep);
    this.stopIterator?.();
  }
}
