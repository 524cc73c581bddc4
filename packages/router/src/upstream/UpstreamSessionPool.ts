import type { HostedServer } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { UpstreamDispatchers } from './McpHttpChannel.js';
import { UpstreamFailure } from './UpstreamFailure.js';
import type { UpstreamPeer } from './UpstreamPeer.js';
import { UpstreamSession, type KnownSession, type ListKind, type StreamPlacement, type UpstreamSessionDeps } from './UpstreamSession.js';

/** A client session as the pool sees it. */
export interface PoolClient {
  /** The client session's id (the router's `Mcp-Session-Id`). */
  readonly id: string;
  readonly peer: UpstreamPeer;
  /** A session of this client just opened: bring it up to date (log level) before its first request. */
  sessionOpened?(session: UpstreamSession): Promise<void>;
  /** One of this client's sessions stopped working (node gone, session expired there). */
  sessionLost?(session: UpstreamSession, reason: string, node: PoolNode): void;
  /** The server said one of its lists changed, on one of this client's sessions. */
  listChanged?(session: UpstreamSession, list: ListKind): void;
  /** Whether the client keeps state on this session (a subscription, a task, sticky affinity): it does not expire idle. */
  keeps?(session: UpstreamSession): boolean;
  /** The client's session on `node` × `server` that another replica opened, if any: used as it is. */
  knownUpstream?(node: PoolNode, server: string): KnownSession | undefined;
  /** A session of this client just opened here: other replicas may use it from now on. */
  recordUpstream?(node: PoolNode, server: string, session: KnownSession): void;
  /** Which replica holds the standalone streams of this client's sessions. */
  readonly streams?: ClientStreams;
}

/** Where the standalone streams of one client's upstream sessions are held (see {@link StreamPlacement}). */
export interface ClientStreams {
  /** Whether this replica holds the client's own stream, and so the upstream ones. */
  holdsHere(): boolean;
  /** Asks the replica holding the client's stream to take the stream of this session; resolves once it did, or none does. */
  handOff(node: PoolNode, server: string, session: KnownSession): Promise<void>;
}

/** Where a session goes: one server on one instance of a node. */
export interface PoolNode {
  readonly nodeId: string;
  /** Random per agent process: sessions of a restarted node are not the old instance's. */
  readonly instanceId: string;
  readonly mcpBaseUrl: string;
}

/** Limits of the pool. */
export interface SessionPoolLimits {
  /** Most upstream sessions for clients, router-wide; past it the least recently used idle one is closed, else the call is refused. */
  readonly maxSessions: number;
  /** A session no request used for this long is closed (unless its client keeps state on it), ms. */
  readonly idleTimeoutMs: number;
}

/** Why a pooled session closed. */
export type SessionCloseReason = 'client_closed' | 'idle' | 'evicted' | 'node_left' | 'lost';

/** What the pool reports (metrics). */
export interface SessionPoolObserver {
  opened?(nodeId: string, server: string, ms: number): void;
  closed?(reason: SessionCloseReason): void;
  refused?(): void;
}

/** What an {@link UpstreamSessionPool} needs. */
export interface SessionPoolDeps {
  readonly dispatchers: UpstreamDispatchers;
  readonly limits: SessionPoolLimits;
  readonly logger: Logger;
  readonly observer?: SessionPoolObserver;
}

interface Pooled {
  readonly key: string;
  readonly client: PoolClient;
  readonly node: PoolNode;
  readonly session: UpstreamSession;
}

/** URL of a hosted server's endpoint on a node. */
export function serverUrl(mcpBaseUrl: string, path: string): URL {
  return new URL(path, mcpBaseUrl.endsWith('/') ? mcpBaseUrl : `${mcpBaseUrl}/`);
}

/**
 * The home of per-client upstream sessions: one session per client session × node instance × server,
 * created on first use and shared by that client's calls there, over the node's shared connection pool.
 * Indexed by client (closed with the client session, fanned out to for log level, roots and task lists)
 * and by node instance (failed when the node dies, closed when it leaves). Bounded in number, and idle
 * sessions expire.
 */
export class UpstreamSessionPool {
  private readonly byKey = new Map<string, Pooled>();
  private readonly byClient = new Map<string, Set<Pooled>>();
  private readonly byInstance = new Map<string, Set<Pooled>>();
  /** A short number per client id, for session keys (see `keyOf`); forgotten when the client closes. */
  private readonly clientKeys = new Map<string, number>();
  private nextClientKey = 1;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: SessionPoolDeps) {
    const every = Math.min(60_000, Math.max(250, Math.floor(deps.limits.idleTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.closeIdle(Date.now()), every);
    this.sweeper.unref();
  }

  get size(): number {
    return this.byKey.size;
  }

  /**
   * The client's session to `hosted` on `node`, created (not yet opened: its first request opens it) when
   * there is none. Throws a refusal when the pool is full of sessions in use.
   */
  acquire(client: PoolClient, node: PoolNode, hosted: HostedServer): UpstreamSession {
    const key = this.keyOf(client, node, hosted.name);
    const known = this.byKey.get(key);
    if (known?.session.usable) return known.session;
    if (known) this.remove(known);
    if (this.byKey.size >= this.deps.limits.maxSessions && !this.evictOne()) {
      this.deps.observer?.refused?.();
      throw new UpstreamFailure('refused', node.nodeId, `the router holds its maximum of ${this.deps.limits.maxSessions} upstream sessions, all in use`, false);
    }
    const pooled: Pooled = { key, client, node, session: this.create(client, node, hosted) };
    this.byKey.set(key, pooled);
    addTo(this.byClient, client.id, pooled);
    addTo(this.byInstance, node.instanceId, pooled);
    return pooled.session;
  }

  /** The client's sessions (open or opening). */
  ofClient(clientId: string): UpstreamSession[] {
    return [...(this.byClient.get(clientId) ?? [])].map((p) => p.session);
  }

  /** The sessions to one node instance. */
  ofInstance(instanceId: string): UpstreamSession[] {
    return [...(this.byInstance.get(instanceId) ?? [])].map((p) => p.session);
  }

  /** The client session closed here: its upstream sessions here close; `terminate` ends them on the nodes too (DELETE). */
  async closeClient(clientId: string, terminate: boolean): Promise<void> {
    this.clientKeys.delete(clientId);
    const all = [...(this.byClient.get(clientId) ?? [])];
    for (const p of all) this.remove(p);
    await Promise.all(all.map((p) => this.close(p, 'client session closed', 'client_closed', terminate)));
  }

  /**
   * The node instance left: its sessions end (`terminate` also ends them there), and their clients learn
   * they lost them, as when a connection breaks: the registry often sees a node go before the wire does,
   * and what a client keeps there (subscriptions) must move either way.
   */
  async closeInstance(instanceId: string, reason: string, terminate = false): Promise<void> {
    const all = [...(this.byInstance.get(instanceId) ?? [])];
    for (const p of all) this.remove(p);
    const lost = all.filter((p) => p.session.usable);
    await Promise.all(all.map((p) => this.close(p, reason, 'node_left', terminate)));
    for (const p of lost) p.client.sessionLost?.(p.session, reason, p.node);
  }

  /**
   * Lets go of sessions idle here past the limit; returns how many. They are not ended on the node:
   * another replica may use the same session, and this one takes it up again on the client's next call
   * there (a node ends sessions nobody uses after its own idle timeout).
   */
  closeIdle(now: number): number {
    let closed = 0;
    for (const p of [...this.byKey.values()]) {
      if (!this.idle(p, now - this.deps.limits.idleTimeoutMs)) continue;
      this.remove(p);
      this.deps.logger.debug({ clientSession: p.client.id, nodeId: p.session.nodeId, server: p.session.server }, 'letting go of an idle upstream session');
      void this.close(p, 'idle', 'idle', false);
      closed++;
    }
    return closed;
  }

  /** Stops the idle sweep and closes every session. */
  async stop(terminate: boolean): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.byKey.values()];
    for (const p of all) this.remove(p);
    await Promise.all(all.map((p) => this.close(p, 'router stopping', 'node_left', terminate)));
  }

  /**
   * A session's key: client × node instance × server. The client part is a short number per client id (a
   * client id is a sealed token of hundreds of characters: a key holding it would be copied and hashed
   * anew on every call, where the id itself keeps its hash).
   */
  private keyOf(client: PoolClient, node: PoolNode, server: string): string {
    let n = this.clientKeys.get(client.id);
    if (n === undefined) this.clientKeys.set(client.id, (n = this.nextClientKey++));
    return `${n}\n${node.instanceId}\n${server}`;
  }

  private create(client: PoolClient, node: PoolNode, hosted: HostedServer): UpstreamSession {
    const startedAt = performance.now();
    const deps: UpstreamSessionDeps = {
      nodeId: node.nodeId,
      server: hosted.name,
      url: serverUrl(node.mcpBaseUrl, hosted.path),
      dispatchers: this.deps.dispatchers,
      peer: client.peer,
      logger: this.deps.logger,
      ...(client.streams ? { streams: placementOf(client.streams, node, hosted.name) } : {}),
      onLost: (s, reason) => {
        const pooled = this.byKey.get(this.keyOf(client, node, hosted.name));
        if (pooled?.session === s) {
          this.remove(pooled);
          this.deps.observer?.closed?.('lost');
        }
        client.sessionLost?.(s, reason, node);
      },
      onListChanged: (s, list) => client.listChanged?.(s, list),
    };
    const known = client.knownUpstream?.(node, hosted.name);
    if (known) {
      const adopted = UpstreamSession.adopt(deps, known);
      if (client.streams?.holdsHere()) void adopted.holdStream();
      return adopted;
    }
    return new UpstreamSession({
      ...deps,
      afterOpen: async (s) => {
        this.deps.observer?.opened?.(node.nodeId, hosted.name, performance.now() - startedAt);
        const opened = s.known;
        if (opened) client.recordUpstream?.(node, hosted.name, opened);
        await client.sessionOpened?.(s);
      },
    });
  }

  private idle(p: Pooled, cutoff: number): boolean {
    const s = p.session;
    // A session whose standalone stream this replica holds carries what the server sends the client outside calls.
    return s.inflightCount === 0 && s.lastUsedAt < cutoff && !s.holdingStream && p.client.keeps?.(s) !== true;
  }

  /** Makes room by closing the least recently used session that is idle and keeps no state. */
  private evictOne(): boolean {
    let oldest: Pooled | undefined;
    for (const p of this.byKey.values()) {
      if (p.session.inflightCount > 0 || p.session.holdingStream || p.client.keeps?.(p.session) === true) continue;
      if (!oldest || p.session.lastUsedAt < oldest.session.lastUsedAt) oldest = p;
    }
    if (!oldest) return false;
    this.remove(oldest);
    void this.close(oldest, 'evicted: the router is at its upstream session limit', 'evicted', false);
    return true;
  }

  private remove(p: Pooled): void {
    if (this.byKey.get(p.key) === p) this.byKey.delete(p.key);
    removeFrom(this.byClient, p.client.id, p);
    removeFrom(this.byInstance, p.node.instanceId, p);
  }

  private async close(p: Pooled, reason: string, why: SessionCloseReason, terminate: boolean): Promise<void> {
    this.deps.observer?.closed?.(why);
    await p.session.close(reason, terminate).catch((err: unknown) => this.deps.logger.debug({ err }, 'error closing an upstream session'));
  }
}

/** One session's stream placement, from its client's. */
function placementOf(streams: ClientStreams, node: PoolNode, server: string): StreamPlacement {
  return {
    holdsHere: () => streams.holdsHere(),
    handOff: async (session) => {
      const known = session.known;
      if (known) await streams.handOff(node, server, known);
    },
  };
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set?.delete(value) && set.size === 0) index.delete(key);
}
