import type { Logger } from '@flotilla/telemetry';
import type { CatalogChange } from '../catalog/CatalogEntries.js';
import type { ClientSession } from './ClientSession.js';

/** The live client sessions by id, with an idle sweep and list_changed fan-out. */
export class SessionTable {
  private readonly sessions = new Map<string, ClientSession>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly idleTimeoutMs: number,
    private readonly logger: Logger,
    /** Hears every session closed for idleness (metrics). */
    private readonly onExpired: () => void = () => {},
  ) {
    this.sweep = setInterval(() => this.closeIdle(), Math.min(60_000, Math.max(1000, Math.floor(idleTimeoutMs / 4))));
    this.sweep.unref();
  }

  add(session: ClientSession): void {
    if (session.sessionId) this.sessions.set(session.sessionId, session);
  }

  get(sessionId: string): ClientSession | undefined {
    return this.sessions.get(sessionId);
  }

  remove(session: ClientSession): void {
    if (session.sessionId && this.sessions.get(session.sessionId) === session) this.sessions.delete(session.sessionId);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sends list_changed for the changed lists to every session. */
  broadcast(change: CatalogChange): void {
    for (const s of this.sessions.values()) s.notifyListChanged(change);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweep);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close()));
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.idleFor(this.idleTimeoutMs, now)) {
        this.logger.info({ sessionId: s.sessionId }, 'closing idle client session');
        this.onExpired();
        void s.close();
      }
    }
  }
}
