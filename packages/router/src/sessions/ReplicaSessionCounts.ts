import { decodeJson, encodeJson, MAX_HEARTBEAT_PRINCIPALS, RouterHeartbeatSchema, type Subjects } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { RemoteSessionCounts } from '../limits/IdentitySessions.js';

/** What a {@link ReplicaSessionCounts} needs. */
export interface ReplicaSessionCountsDeps {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /** This replica's tag (its own heartbeats are ignored). */
  readonly tag: string;
  readonly logger: Logger;
  /** This replica's own sessions by principal. */
  local(): ReadonlyMap<string, number>;
  /** Heartbeat period, ms (default 1000). */
  readonly intervalMs?: number;
  /** A replica not heard from for this long is gone and its sessions no longer count, ms (default 3 × interval). */
  readonly staleAfterMs?: number;
  /** Most other replicas followed (default 256); beyond it the least recently heard is dropped. */
  readonly maxReplicas?: number;
}

interface ReplicaCounts {
  readonly sessions: ReadonlyMap<string, number>;
  readonly total: number;
  readonly heardAt: number;
}

/** What `/api/v1/replicas` shows of one other replica. */
export interface ReplicaSummary {
  readonly tag: string;
  readonly sessions: number;
  readonly principals: number;
  readonly heardMsAgo: number;
}

/**
 * The per-identity session counts of every router replica, shared over NATS so the cap on sessions per
 * identity holds across the mesh: each replica publishes its own counts on the replicas' heartbeat subject
 * every `intervalMs` and at once when they change (coalesced per tick); the others keep the last counts
 * of each replica heard within `staleAfterMs`. Eventually consistent: two replicas opening sessions for the
 * same identity within one propagation delay can both admit, so the cap can be overshot by at most the
 * opens in flight across replicas during that delay. Messages are checked (zod) and bounded; only routers
 * may publish on the replicas' subjects (NATS permissions), as for every other replica message.
 */
export class ReplicaSessionCounts implements RemoteSessionCounts {
  private readonly others = new Map<string, ReplicaCounts>();
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private publishPending = false;
  private readonly intervalMs: number;
  private readonly staleAfterMs: number;
  private readonly maxReplicas: number;

  constructor(private readonly deps: ReplicaSessionCountsDeps) {
    this.intervalMs = deps.intervalMs ?? 1000;
    this.staleAfterMs = deps.staleAfterMs ?? 3 * this.intervalMs;
    this.maxReplicas = deps.maxReplicas ?? 256;
  }

  start(): void {
    this.subscription = this.deps.nc.subscribe(this.deps.subjects.routerHeartbeats, { callback: (err, msg) => {
      if (!err) this.onHeartbeat(msg);
    } });
    this.timer = setInterval(() => this.publish(), this.intervalMs);
    this.timer.unref();
    this.publish();
  }

  /** Stops following, and tells the others this replica holds nothing any more. */
  stop(): void {
    clearInterval(this.timer);
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (!this.deps.nc.isClosed()) this.deps.nc.publish(this.deps.subjects.routerHeartbeats, encodeJson({ tag: this.deps.tag, at: Date.now(), sessions: {} }));
  }

  /** This replica's counts changed: publish them (once per tick however many changed). */
  changed(): void {
    if (this.publishPending || !this.subscription) return;
    this.publishPending = true;
    setImmediate(() => {
      this.publishPending = false;
      this.publish();
    });
  }

  elsewhere(principal: string, now = Date.now()): number {
    let sum = 0;
    for (const replica of this.others.values()) if (now - replica.heardAt < this.staleAfterMs) sum += replica.sessions.get(principal) ?? 0;
    return sum;
  }

  /** The other live replicas and how many sessions each holds. */
  describe(now = Date.now()): ReplicaSummary[] {
    this.prune(now);
    return [...this.others].map(([tag, r]) => ({ tag, sessions: r.total, principals: r.sessions.size, heardMsAgo: now - r.heardAt }));
  }

  private publish(): void {
    if (this.deps.nc.isClosed()) return;
    let counts = [...this.deps.local()];
    if (counts.length > MAX_HEARTBEAT_PRINCIPALS) counts = counts.sort((a, b) => b[1] - a[1]).slice(0, MAX_HEARTBEAT_PRINCIPALS);
    this.deps.nc.publish(this.deps.subjects.routerHeartbeats, encodeJson({ tag: this.deps.tag, at: Date.now(), sessions: Object.fromEntries(counts) }));
  }

  private onHeartbeat(msg: Msg): void {
    const decoded = decodeJson(RouterHeartbeatSchema, msg.data);
    if (!decoded.ok) {
      this.deps.logger.warn({ subject: msg.subject, error: decoded.error }, 'dropping an invalid heartbeat from another router replica');
      return;
    }
    const { tag, sessions } = decoded.value;
    if (tag === this.deps.tag) return;
    const now = Date.now();
    const map = new Map(Object.entries(sessions ?? {}));
    let total = 0;
    for (const n of map.values()) total += n;
    this.others.delete(tag);
    this.others.set(tag, { sessions: map, total, heardAt: now });
    this.prune(now);
  }

  private prune(now: number): void {
    for (const [tag, r] of this.others) if (now - r.heardAt >= this.staleAfterMs) this.others.delete(tag);
    while (this.others.size > this.maxReplicas) this.others.delete(this.others.keys().next().value!);
  }
}
