import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  NodeRecordSchema,
  PingDataSchema,
  canonicalJson,
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
  type RecordProof,
  type RecordSigner,
  type RegistryWatch,
  type RegistryWatchEvent,
} from '../Registry.js';

/**
 * Value stored under `nodes.<nodeId>` in the registry bucket. `sig` (optional on the wire: older agents and
 * agents run without a node key leave it out) is the node's signature over the canonical JSON of `record`.
 */
const KvNodeValueSchema = z.object({ record: NodeRecordSchema, ping: PingDataSchema.optional(), sig: z.string().max(200).optional() });
/** A decoded value, with the signature's proof built from the record as stored. */
type KvNodeValue = z.infer<typeof KvNodeValueSchema> & { proof?: RecordProof };

/** Options for {@link NatsKvRegistry}. */
export interface NatsKvRegistryOptions {
  /** Subject prefix; the bucket is `<prefix>_nodes`. */
  prefix?: string;
  timings?: Partial<RegistryTimings>;
  /** Bucket-level TTL, ms: records of nodes that vanished without deregistering are purged after it. */
  bucketTtlMs?: number;
  /** Signs each record this registry writes (an agent with a node key); unsigned without it. */
  signRecord?: RecordSigner;
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

  /**
   * Runs a KV operation. On failure the bucket handle is dropped, so the next operation creates the bucket
   * again: a nats-server that restarted without its JetStream store has lost the bucket, and a cached
   * handle would fail forever.
   */
  private async withKv<T>(operation: (kv: KV) => Promise<T>): Promise<T> {
    const pending = this.kv();
    try {
      return await operation(await pending);
    } catch (err) {
      if (this.kvPromise === pending) this.kvPromise = undefined;
      throw err;
    }
  }

  async register(record: NodeRecord): Promise<void> {
    await this.withKv((kv) => this.registerIn(kv, record));
  }

  private async registerIn(kv: KV, record: NodeRecord): Promise<void> {
    const key = KEY_PREFIX + record.nodeId;
    const existing = await kv.get(key);
    const current = existing && existing.operation === 'PUT' ? this.decode(existing) : undefined;
    if (current && current.record.instanceId !== record.instanceId && this.ageMs(existing!) < this.timings.staleAfterMs) {
      throw new NodeIdCollisionError(record.nodeId, `instance ${current.record.instanceId} at ${current.record.mcpBaseUrl}`);
    }
    const ping = current?.record.instanceId === record.instanceId ? current.ping : undefined;
    this.revisions.set(record.nodeId, await kv.put(key, this.encode(record, ping)));
  }

  async heartbeat(record: NodeRecord, ping: PingData): Promise<void> {
    if (!this.revisions.has(record.nodeId)) throw new NodeNotRegisteredError(record.nodeId);
    await this.withKv((kv) => this.heartbeatIn(kv, record, ping));
  }

  private async heartbeatIn(kv: KV, record: NodeRecord, ping: PingData): Promise<void> {
    const key = KEY_PREFIX + record.nodeId;
    const revision = this.revisions.get(record.nodeId);
    if (revision === undefined) throw new NodeNotRegisteredError(record.nodeId);
    try {
      this.revisions.set(record.nodeId, await kv.update(key, this.encode(record, ping), revision));
    } catch (err) {
      // The compare-and-set failed: the key was deleted, expired, or written by someone else, or the
      // bucket is gone (a server that lost its store); in every case this node must register again.
      this.revisions.delete(record.nodeId);
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
    this.revisions.delete(nodeId);
    await this.withKv((kv) => kv.delete(KEY_PREFIX + nodeId));
  }

  async list(options: { includeCritical?: boolean } = {}): Promise<RegisteredNode[]> {
    return this.withKv((kv) => this.listIn(kv, options));
  }

  private async listIn(kv: KV, options: { includeCritical?: boolean }): Promise<RegisteredNode[]> {
    // kv.keys() ends only when its consumer sees nothing pending, which never happens while agents keep
    // heartbeating (seen: 90 s). The stream's per-subject state lists the keys in one request.
    const jsm = await jetstreamManager(this.nc);
    const subjectPrefix = `$KV.${this.bucket}.`;
    const info = await jsm.streams.info(`KV_${this.bucket}`, { subjects_filter: `${subjectPrefix}${KEY_PREFIX}*` });
    const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(subjectPrefix.length));
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
    return new NatsKvWatch(this.nc, () => this.withKv(async (kv) => kv), () => this.dropKv(), this.timings, listener, this.options.logger, (e) => this.decode(e), (v, at) =>
      this.toNode(v, at),
    );
  }

  async close(): Promise<void> {
    this.revisions.clear();
  }

  /** Forgets the bucket handle so the next use creates the bucket again. */
  private dropKv(): void {
    this.kvPromise = undefined;
  }

  private ageMs(entry: KvEntry): number {
    return Date.now() - entry.created.getTime();
  }

  /** The stored value of a record (signed when this registry has a signer) and its ping data. */
  private encode(record: NodeRecord, ping: PingData | undefined): Uint8Array {
    const sig = this.options.signRecord?.(record);
    return encodeJson({ record, ...(ping ? { ping } : {}), ...(sig ? { sig } : {}) });
  }

  /**
   * Decodes a stored value; undefined (with one warning) when it is malformed, or when the record inside
   * names another node than the key it is stored under (a writer allowed only its own key must not speak
   * for another node).
   */
  private decode(entry: KvEntry): KvNodeValue | undefined {
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(entry.value));
    } catch (err) {
      this.options.logger.warn({ key: entry.key, error: (err as Error).message }, 'ignoring malformed registry record');
      return undefined;
    }
    const parsed = KvNodeValueSchema.safeParse(raw);
    if (!parsed.success) {
      const error = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      this.options.logger.warn({ key: entry.key, error }, 'ignoring malformed registry record');
      return undefined;
    }
    const value: KvNodeValue = parsed.data;
    if (KEY_PREFIX + value.record.nodeId !== entry.key) {
      this.options.logger.warn({ key: entry.key, nodeId: value.record.nodeId }, 'ignoring a registry record stored under another node\'s key');
      return undefined;
    }
    if (value.sig !== undefined) value.proof = { signed: canonicalJson((raw as { record: unknown }).record), sig: value.sig };
    return value;
  }

  private toNode(value: KvNodeValue, heartbeatAt: number): RegisteredNode {
    const stale = Date.now() - heartbeatAt > this.timings.staleAfterMs;
    const health: NodeHealth = stale ? 'critical' : value.ping && value.ping.status !== 'ok' ? 'warning' : 'passing';
    return { record: value.record, ...(value.ping ? { ping: value.ping } : {}), ...(value.proof ? { proof: value.proof } : {}), health, lastHeartbeatAt: heartbeatAt };
  }
}

/** A node's latest value as the watch saw it, and when (for the staleness sweep). */
interface WatchedEntry {
  value: KvNodeValue;
  seenAt: number;
}

/** One watch over the registry bucket, with the staleness sweep that NATS KV cannot do server-side. */
class NatsKvWatch implements RegistryWatch {
  private entries = new Map<string, WatchedEntry>();
  private lastEmitted = '';
  private stopped = false;
  private reachable = true;
  private stopIterator: (() => void) | undefined;
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: () => Promise<KV>,
    private readonly dropKv: () => void,
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
      if (s.type === 'disconnect') {
        this.setReachable(false, 'NATS connection lost');
      } else if (s.type === 'reconnect') {
        // Heartbeats could not arrive while we were cut off: give every node a fresh grace period.
        const now = Date.now();
        for (const e of this.entries.values()) e.seenAt = Math.max(e.seenAt, now);
        this.setReachable(true);
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
        // Each (re)subscription replays the bucket: build the view afresh and swap it in once the replay is
        // done, so keys deleted while we were away (or a bucket lost with its server's store) disappear,
        // and the previous view stays in place until then.
        const replay = new Map<string, WatchedEntry>();
        let replayed = false;
        const finishReplay = (): void => {
          replayed = true;
          this.entries = replay;
          backoff = 250;
          this.setReachable(true);
          this.emit();
        };
        if ((await kv.status()).values === 0) finishReplay();
        for await (const entry of iter) {
          this.apply(replayed ? this.entries : replay, entry);
          if (!replayed && (entry.delta === 0 || entry.isUpdate)) finishReplay();
          else if (replayed) this.emit();
        }
        if (this.stopped) return;
        // The consumer ended on its own: the stream is gone or the server dropped the consumer.
        throw new Error('the registry bucket watch ended (bucket deleted or consumer lost)');
      } catch (err) {
        if (this.stopped) return;
        this.dropKv();
        this.setReachable(false, (err as Error).message);
        this.logger.debug({ err }, 'registry watch failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(5000, backoff * 2);
      }
    }
  }

  /** Applies one KV entry; a malformed value removes the node, since the bucket holds no valid record for it. */
  private apply(into: Map<string, WatchedEntry>, entry: KvWatchEntry): void {
    const nodeId = entry.key.slice(KEY_PREFIX.length);
    const value = entry.operation === 'PUT' ? this.decode(entry) : undefined;
    if (!value) into.delete(nodeId);
    else into.set(nodeId, { value, seenAt: entry.isUpdate ? Date.now() : entry.created.getTime() });
  }

  private setReachable(reachable: boolean, error?: string): void {
    if (this.stopped || reachable === this.reachable) return;
    this.reachable = reachable;
    this.listener(reachable ? { type: 'status', reachable } : { type: 'status', reachable, ...(error ? { error } : {}) });
  }

  private emit(): void {
    if (this.stopped) return;
    if (!this.reachable && this.lastEmitted) return; // keep the last known view while cut off
    const nodes = [...this.entries.values()]
      .map((e) => this.toNode(e.value, e.seenAt))
      .filter((n) => n.health !== 'critical')
      .sort((a, b) => a.record.nodeId.localeCompare(b.record.nodeId));
    const key = JSON.stringify(nodes.map((n) => [n.record, n.health]));
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    this.listener({ type: 'snapshot', nodes });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweep);
    this.stopIterator?.();
  }
}
