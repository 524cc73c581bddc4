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
 * there (a server is in the catalog only while its listing session is open; a lost one is reopened with
 * backoff). Client calls never use these sessions: each client has its own (see `UpstreamSessionPool`).
 */
export class NodeListings {
  private readonly sessions = new Map<string, UpstreamSession>();
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
      else if (old.path !== hosted.path) {
        this.closeSession(name, 'server moved');
        this.openSession(hosted, 0);
      } else if (old.toolDigest !== hosted.toolDigest) this.refresh(name);
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
        logger.warn({ nodeId, server: s.server, reason }, 'listing session lost; reconnecting');
        this.sessions.delete(s.server);
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
      catalog.setListing(hosted.name, nodeId, listing);
      logger.info(
        { nodeId, server: hosted.name, url: session.url, tools: listing.tools.length, resources: listing.resources.length, prompts: listing.prompts.length },
        'upstream server ready',
      );
    } catch (err) {
      if (this.stopped || this.sessions.get(hosted.name) !== session) return;
      this.sessions.delete(hosted.name);
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

  private closeSession(server: string, reason: string): void {
    const session = this.sessions.get(server);
    this.sessions.delete(server);
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
