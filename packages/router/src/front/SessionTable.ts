import type { Logger } from '@flotilla/telemetry';
import type { CatalogChange } from '../catalog/CatalogEntries.js';
import type { SessionStore, StoredRecord } from '../sessions/SessionStore.js';
import type { ClientSession } from './ClientSession.js';

/** What a {@link SessionTable} needs. */
export interface SessionTableDeps {
  /** A session with no activity for this long is let go here; and ended when nobody touched its record that long either, ms. */
  readonly idleTimeoutMs: number;
  readonly store: SessionStore;
  readonly logger: Logger;
  /** Hears every session ended for idleness (metrics). */
  readonly onExpired?: () => void;
}

/**
 * The client sessions loaded on this replica, by session id and by stable id, with the idle sweep,
 * list_changed fan-out, and what the shared store says other replicas did (a newer record, a session
 * ended elsewhere).
 */
export class SessionTable {
  private readonly bySessionId = new Map<string, ClientSession>();
  private readonly bySidMap = new Map<string, ClientSession>();
  private readonly sweep: NodeJS.Timeout;
  private readonly unwatch: () => void;

  constructor(private readonly deps: SessionTableDeps) {
    const idle = deps.idleTimeoutMs;
    this.sweep = setInterval(() => void this.sweepIdle(), Math.min(60_000, Math.max(250, Math.floor(idle / 4))));
    this.sweep.unref();
    this.unwatch = deps.store.watch((sid, stored) => this.onRecord(sid, stored));
  }

  add(session: ClientSession): void {
    this.bySessionId.set(session.sessionId, session);
    this.bySidMap.set(session.sid, session);
  }

  get(sessionId: string): ClientSession | undefined {
    return this.bySessionId.get(sessionId);
  }

  bySid(sid: string): ClientSession | undefined {
    return this.bySidMap.get(sid);
  }

  remove(session: ClientSession): void {
    if (this.bySessionId.get(session.sessionId) === session) this.bySessionId.delete(session.sessionId);
    if (this.bySidMap.get(session.sid) === session) this.bySidMap.delete(session.sid);
  }

  get size(): number {
    return this.bySessionId.size;
  }

  /** Sends list_changed for the changed lists to every session. */
  broadcast(change: CatalogChange): void {
    for (const s of this.bySessionId.values()) s.notifyListChanged(change);
  }

  /** Lets go of every session here (router stop); the sessions go on on other replicas. */
  async closeAll(): Promise<void> {
    clearInterval(this.sweep);
    this.unwatch();
    const all = [...this.bySessionId.values()];
    await Promise.all(all.map((s) => s.unload(false)));
  }

  private onRecord(sid: string, stored: StoredRecord | undefined): void {
    const session = this.bySidMap.get(sid);
    if (!session) return;
    if (stored) session.adopt(stored);
    else {
      this.deps.logger.info({ sessionId: sid }, 'client session ended on another replica');
      void session.unload(false);
    }
  }

  /**
   * Sessions idle here are let go; one whose shared record nobody touched for the idle timeout either
   * (no replica served it) is ended for good: its record and its upstream sessions on the nodes.
   */
  private async sweepIdle(): Promise<void> {
    const now = Date.now();
    for (const s of [...this.bySessionId.values()]) {
      if (!s.idleFor(this.deps.idleTimeoutMs, now)) continue;
      const stored = await this.deps.store.load(s.sid).catch(() => undefined);
      if (stored && now - stored.record.touchedAt <= this.deps.idleTimeoutMs) {
        void s.unload(false);
        continue;
      }
      this.deps.logger.info({ sessionId: s.sid }, 'closing idle client session');
      this.deps.onExpired?.();
      void s.end();
    }
  }
}
