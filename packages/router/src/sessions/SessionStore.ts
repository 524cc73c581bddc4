import { decodeJson, encodeJson } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { applyChange, SessionRecordSchema, type SessionChange, type SessionRecord } from './SessionRecord.js';

/** A session record as read, with the revision a compare-and-set must name. */
export interface StoredRecord {
  readonly record: SessionRecord;
  readonly revision: number;
}

/** Hears records other replicas (or this one) wrote. */
export type RecordListener = (sid: string, stored: StoredRecord | undefined) => void;

/** Where client sessions' shared state lives, so that any router replica can serve any session. */
export interface SessionStore {
  /** Records a new session. */
  create(sid: string, record: SessionRecord): Promise<void>;
  /** The session's record; undefined when the session is gone (ended, or expired unused). */
  load(sid: string): Promise<StoredRecord | undefined>;
  /** Applies `change` to the latest record (compare-and-set, retried); undefined when the session is gone. */
  change(sid: string, change: SessionChange): Promise<StoredRecord | undefined>;
  delete(sid: string): Promise<void>;
  /** Hears every record written or deleted; returns the unsubscribe function. */
  watch(listener: RecordListener): () => void;
  stop(): Promise<void>;
}

/** Attempts of one compare-and-set before it gives up. */
const MAX_CAS_ATTEMPTS = 8;

/**
 * Session records in a NATS KV bucket (`<bucket>`, one key per session's stable id), shared by every router
 * replica on the same NATS. The bucket's TTL expires records nobody wrote for that long (replicas touch
 * the records of sessions in use); changes are compare-and-set on the latest revision, so two replicas
 * changing one session at once both land; a watch tells every replica what the others wrote.
 */
export class NatsKvSessionStore implements SessionStore {
  private kvPromise: Promise<KV> | undefined;
  private readonly listeners = new Set<RecordListener>();
  private stopWatch: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    /** Whether the NATS connection is up: while it is down, operations fail at once instead of queueing for the reconnect. */
    private readonly connected: () => boolean = () => true,
  ) {}

  async create(sid: string, record: SessionRecord): Promise<void> {
    await this.withKv((kv) => kv.create(sid, encodeJson(record)));
  }

  async load(sid: string): Promise<StoredRecord | undefined> {
    return this.withKv(async (kv) => {
      const entry = await kv.get(sid);
      if (!entry || entry.operation !== 'PUT') return undefined;
      const decoded = decodeJson(SessionRecordSchema, entry.value);
      if (!decoded.ok) {
        this.logger.warn({ sid, error: decoded.error }, 'a session record in the store is invalid; treating the session as gone');
        return undefined;
      }
      return { record: decoded.value, revision: entry.revision };
    });
  }

  async change(sid: string, change: SessionChange): Promise<StoredRecord | undefined> {
    return this.withKv(async (kv) => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const current = await this.load(sid);
        if (!current) return undefined;
        applyChange(current.record, change);
        try {
          const revision = await kv.update(sid, encodeJson(current.record), current.revision);
          return { record: current.record, revision };
        } catch (err) {
          // Another replica wrote in between: read again and apply the change to its record.
          if (attempt === MAX_CAS_ATTEMPTS - 1) throw err;
        }
      }
      return undefined;
    });
  }

  async delete(sid: string): Promise<void> {
    await this.withKv((kv) => kv.delete(sid));
  }

  watch(listener: RecordListener): () => void {
    this.listeners.add(listener);
    if (!this.stopWatch) void this.runWatch();
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWatch?.();
  }

  private kv(): Promise<KV> {
    this.kvPromise ??= new Kvm(this.nc).create(this.bucket, { history: 1, ttl: this.ttlMs }).catch((err: unknown) => {
      this.kvPromise = undefined;
      throw err;
    });
    return this.kvPromise;
  }

  private async withKv<T>(operation: (kv: KV) => Promise<T>): Promise<T> {
    // Requests made while cut off would all go out at once on reconnect, with everyone else's catching up.
    if (!this.connected()) throw new Error('NATS is not connected');
    const pending = this.kv();
    try {
      return await operation(await pending);
    } catch (err) {
      if (this.kvPromise === pending) this.kvPromise = undefined;
      throw err;
    }
  }

  private async runWatch(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      try {
        if (!this.connected()) throw new Error('NATS is not connected');
        const kv = await this.kv();
        const iter = await kv.watch({ include: 'updates' });
        this.stopWatch = () => iter.stop();
        backoff = 250;
        for await (const entry of iter) {
          const decoded = entry.operation === 'PUT' ? decodeJson(SessionRecordSchema, entry.value) : undefined;
          const stored = decoded?.ok ? { record: decoded.value, revision: entry.revision } : undefined;
          for (const l of this.listeners) l(entry.key, stored);
        }
        if (this.stopped) return;
        throw new Error('the session store watch ended');
      } catch (err) {
        if (this.stopped) return;
        if (this.connected()) this.kvPromise = undefined;
        this.logger.debug({ err }, 'session store watch failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(5000, backoff * 2);
      }
    }
  }
}
