import type { HostedServer } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { Catalog } from '../catalog/Catalog.js';
import type { ServerListing } from '../catalog/ServerListing.js';
import type { UpstreamDispatchers } from '../upstream/McpHttpChannel.js';
import { readListing } from '../upstream/readListing.js';
import { serverUrl } from '../upstream/UpstreamSessionPool.js';
import type { UpstreamPeer } from '../upstream/UpstreamPeer.js';
import { UpstreamSession } from '../upstream/UpstreamSession.js';

/** Backoff between attempts to (re)open a listing session, ms. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;
/**
 * A lost listing session is reopened at once, its listing kept meanwhile, at most this often per server;
 * a second loss sooner waits this long before reopening (a server that loses every session right after
 * it opened must not keep the router relisting it in a loop), ms.
 */
const RELIST_MIN_INTERVAL_MS = 1000;
/** Longest a server's listing is kept while its listing session reopens; past it the server leaves until listed, ms. */
const RELIST_GRACE_MS = 5000;

/** What {@link NodeListings} needs. */
export interface NodeListingsDeps {
  readonly nodeId: string;
  readonly catalog: Catalog;
  readonly dispatchers: UpstreamDispatchers;
  /** The router itself, as the peer of its listing sessions. */
  readonly peer: UpstreamPeer;
  readonly logger: Logger;
}

/**
 * The router's own session to each server hosted on one node: it fetches what the server offers into the
 * catalog, refetches when the server says a list changed, and is how the router knows the server works
 * there (a server is in the catalog only while its listing session is open, or being reopened; one that
 * cannot be reopened is retried with backoff). Client calls never use these sessions: each client has its
 * own (see `UpstreamSessionPool`).
 *
 * A listing session of a server the node still hosts can be lost without anything being wrong: the agent
 * replaced the server (a changed mount: its sessions end, and its path now leads to the new one), or
 * ended idle sessions. Such a server keeps its listing in the catalog, and keeps taking calls, while a new
 * listing session opens at once; the new listing then replaces the old one in place. Only when that
 * session cannot be opened (the server does not answer, the node is gone) does the server leave the
 * catalog. Removing it first and re-adding it once relisted would leave a tool with no replica at all
 * while every node relists (all agents reloading one config change), and clients would be told the tool
 * does not exist.
 */
export class NodeListings {
  private readonly sessions = new Map<string, UpstreamSession>();
  /** Servers whose listing stays in the catalog while a new listing session to them opens (the previous one was lost). */
  private readonly relisting = new Map<string, NodeJS.Timeout>();
  /** When each server was last relisted (see {@link RELIST_MIN_INTERVAL_MS}). */
  private readonly relistedAt = new Map<string, number>();
  private readonly reconnectTimers = new Map<string, NodeJS.Timeout>();
  private readonly refreshes = new Map<string, { running: boolean; again: boolean }>();
  private servers = new Map<string, HostedServer>();
  private stopped = false;

  constructor(
    private readonly deps: NodeListingsDeps,
    private readonly mcpBaseUrl: string,
  ) {}

  /** Whether the listing session of `server` is open (the server works on this node). */
  connected(server: string): boolean {
    return this.sessions.get(server)?.connected === true;
  }

  /**
   * Whether calls for `server` may go to this node: its listing session is open, or is being reopened
   * after a loss with the listing kept (a replaced server serves from its new session; if it does not
   * answer, the call is refused before anything ran and goes to another replica).
   */
  serves(server: string): boolean {
    return this.connected(server) || this.relisting.has(server);
  }

  /** Whether `server`'s listing session is being reopened with its listing kept in the catalog. */
  isRelisting(server: string): boolean {
    return this.relisting.has(server);
  }

  /** Whether any server's listing session is open. */
  get anyConnected(): boolean {
    for (const s of this.sessions.values()) if (s.connected) return true;
    return false;
  }

  /** The open listing session of `server`, if any. */
  session(server: string): UpstreamSession | undefined {
    const s = this.sessions.get(server);
    return s?.connected ? s : undefined;
  }

  /** Every listing session (for failing their requests when the node dies). */
  all(): UpstreamSession[] {
    return [...this.sessions.values()];
  }

  /** Applies the node's hosted servers: opens sessions for new ones, closes removed ones, refetches changed ones. */
  apply(servers: readonly HostedServer[]): void {
    const before = this.servers;
    this.servers = new Map(servers.map((s) => [s.name, s]));
    for (const name of before.keys()) if (!this.servers.has(name)) this.closeSession(name, 'server no longer hosted');
    for (const [name, hosted] of this.servers) {
      const old = before.get(name);
      if (!old) this.openSession(hosted, 0);
      else if (old.path !== hosted.path) this.reopen(hosted, 'server moved', 0);
      else if (old.toolDigest !== hosted.toolDigest) this.refresh(name);
    }
  }

  /**
   * What `hosted` here shows a session that speaks for `peer` (with that peer's capabilities): read on a
   * throwaway session, ended on the node right after.
   */
  async readAs(hosted: HostedServer, peer: UpstreamPeer): Promise<ServerListing> {
    const session = new UpstreamSession({
      nodeId: this.deps.nodeId,
      server: hosted.name,
      url: serverUrl(this.mcpBaseUrl, hosted.path),
      dispatchers: this.deps.dispatchers,
      peer,
      logger: this.deps.logger,
    });
    try {
      return await readListing(session);
    } finally {
      void session.close('listing read', true);
    }
  }

  /** Stops reopening sessions (the node is retiring); open ones stay until {@link close}. */
  stopReconnecting(): void {
    this.stopped = true;
    for (const server of [...this.relisting.keys()]) this.endRelisting(server);
    for (const t of this.reconnectTimers.values()) clearTimeout(t);
    this.reconnectTimers.clear();
  }

  /** Closes every listing session; `terminate` also ends them on the node. */
  async close(reason: string, terminate: boolean): Promise<void> {
    this.stopReconnecting();
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close(reason, terminate)));
  }

  private openSession(hosted: HostedServer, attempt: number): void {
    if (this.stopped) return;
    const { logger, catalog, nodeId } = this.deps;
    const session = new UpstreamSession({
      nodeId,
      server: hosted.name,
      url: serverUrl(this.mcpBaseUrl, hosted.path),
      dispatchers: this.deps.dispatchers,
      peer: this.deps.peer,
      logger,
      onListChanged: (s) => {
        if (this.sessions.get(s.server) === s) this.refresh(s.server);
      },
      onLost: (s, reason) => {
        if (this.sessions.get(s.server) !== s || this.stopped) return;
        this.sessions.delete(s.server);
        const still = this.servers.get(s.server);
        if (still) {
          const last = this.relistedAt.get(s.server);
          const delayMs = last !== undefined && Date.now() - last < RELIST_MIN_INTERVAL_MS ? RELIST_MIN_INTERVAL_MS : 0;
          logger.info({ nodeId, server: s.server, reason, delayMs }, 'listing session lost; reopening it, the listing stays meanwhile');
          this.reopen(still, reason, delayMs);
          return;
        }
        logger.warn({ nodeId, server: s.server, reason }, 'listing session lost; reconnecting');
        this.endRelisting(s.server);
        catalog.removeListing(s.server, nodeId);
        this.scheduleReconnect(s.server, 0);
      },
    });
    this.sessions.set(hosted.name, session);
    void this.fetchInto(session, hosted, attempt);
  }

  private async fetchInto(session: UpstreamSession, hosted: HostedServer, attempt: number): Promise<void> {
    const { logger, catalog, nodeId } = this.deps;
    try {
      const listing = await readListing(session);
      if (this.stopped || this.sessions.get(hosted.name) !== session || !session.connected) return;
      // Replaces a kept listing in place: the server never leaves the catalog on the way.
      catalog.setListing(hosted.name, nodeId, listing);
      this.endRelisting(hosted.name);
      logger.info(
        { nodeId, server: hosted.name, url: session.url, tools: listing.tools.length, resources: listing.resources.length, prompts: listing.prompts.length },
        'upstream server ready',
      );
    } catch (err) {
      if (this.stopped || this.sessions.get(hosted.name) !== session) return;
      this.sessions.delete(hosted.name);
      if (this.endRelisting(hosted.name)) {
        // The server was being relisted with its old listing kept: it does not answer, so it leaves now.
        catalog.removeListing(hosted.name, nodeId);
        logger.warn({ nodeId, server: hosted.name, url: session.url, err }, 'cannot reopen a lost listing session; the server leaves the catalog until it answers');
      }
      await session.close('connect failed');
      const log = attempt === 0 ? logger.warn.bind(logger) : logger.debug.bind(logger);
      log({ nodeId, server: hosted.name, url: session.url, err, attempt }, 'cannot open a listing session; retrying');
      this.scheduleReconnect(hosted.name, attempt + 1);
    }
  }

  private scheduleReconnect(server: string, attempt: number): void {
    if (this.stopped || this.reconnectTimers.has(server)) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** attempt);
    const timer = setTimeout(() => {
      this.reconnectTimers.delete(server);
      const hosted = this.servers.get(server);
      if (hosted && !this.sessions.has(server)) this.openSession(hosted, attempt);
    }, delay);
    timer.unref();
    this.reconnectTimers.set(server, timer);
  }

  /**
   * Opens a new listing session to `hosted` after `delayMs` (0: at once), keeping the server's listing in
   * the catalog (and the server taking calls here) until the new session replaces it, or fails and it
   * leaves, or {@link RELIST_GRACE_MS} passes.
   */
  private reopen(hosted: HostedServer, reason: string, delayMs: number): void {
    const old = this.sessions.get(hosted.name);
    this.sessions.delete(hosted.name);
    const timer = this.reconnectTimers.get(hosted.name);
    if (timer) clearTimeout(timer);
    this.reconnectTimers.delete(hosted.name);
    this.relistedAt.set(hosted.name, Date.now());
    this.endRelisting(hosted.name);
    const { catalog, nodeId, logger } = this.deps;
    // Kept only if it is in the catalog: one that never got there (or already left) enters when listed.
    if (catalog.hasListing(hosted.name, nodeId)) {
      const grace = setTimeout(() => {
        if (this.relisting.get(hosted.name) !== grace) return;
        this.relisting.delete(hosted.name);
        catalog.removeListing(hosted.name, nodeId);
        logger.warn({ nodeId, server: hosted.name, graceMs: RELIST_GRACE_MS }, 'listing session not reopened in time; the server leaves the catalog until it is listed');
      }, RELIST_GRACE_MS);
      grace.unref();
      this.relisting.set(hosted.name, grace);
    }
    if (old) void old.close(reason);
    if (delayMs === 0) {
      this.openSession(hosted, 0);
      return;
    }
    const later = setTimeout(() => {
      this.reconnectTimers.delete(hosted.name);
      const current = this.servers.get(hosted.name);
      if (current && !this.sessions.has(hosted.name)) this.openSession(current, 0);
    }, delayMs);
    later.unref();
    this.reconnectTimers.set(hosted.name, later);
  }

  /** Ends the relisting of `server` (its listing was replaced, or it leaves); true when it was relisting. */
  private endRelisting(server: string): boolean {
    const grace = this.relisting.get(server);
    if (grace === undefined) return false;
    clearTimeout(grace);
    this.relisting.delete(server);
    return true;
  }

  private closeSession(server: string, reason: string): void {
    const session = this.sessions.get(server);
    this.sessions.delete(server);
    this.endRelisting(server);
    this.relistedAt.delete(server);
    const timer = this.reconnectTimers.get(server);
    if (timer) clearTimeout(timer);
    this.reconnectTimers.delete(server);
    this.deps.catalog.removeListing(server, this.deps.nodeId);
    if (session) void session.close(reason);
  }

  /** Refetches a server's lists; coalesces bursts of list_changed into at most one extra fetch. */
  private refresh(server: string): void {
    let state = this.refreshes.get(server);
    if (!state) this.refreshes.set(server, (state = { running: false, again: false }));
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    const current = state;
    void (async () => {
      try {
        do {
          current.again = false;
          const session = this.sessions.get(server);
          if (!session?.connected || this.stopped) return;
          const listing = await readListing(session);
          if (this.sessions.get(server) === session && session.connected && !this.stopped) this.deps.catalog.setListing(server, this.deps.nodeId, listing);
        } while (current.again);
      } catch (err) {
        this.deps.logger.warn({ nodeId: this.deps.nodeId, server, err }, 'cannot refresh upstream lists');
      } finally {
        current.running = false;
      }
    })();
  }
}
