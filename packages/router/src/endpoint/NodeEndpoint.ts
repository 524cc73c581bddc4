import type { HostedServer } from '@flotilla/protocol';
import type { RegisteredNode } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { ClientRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Dispatcher } from 'undici';
import type { ReplicaView } from '../balancer/Balancer.js';
import type { Catalog } from '../catalog/Catalog.js';
import { NodeGuard, type BreakerState } from './NodeGuard.js';
import type { ServerMessageRelay } from './ServerMessageRelay.js';
import { CallCancelledError, UpstreamFailure } from './UpstreamFailure.js';
import { UpstreamSession, type UpstreamRequestOptions } from './UpstreamSession.js';

/** What a {@link NodeEndpoint} needs from the router. */
export interface NodeEndpointDeps {
  catalog: Catalog;
  dispatcher: Dispatcher;
  relay: ServerMessageRelay;
  logger: Logger;
  /** Fixed per-node concurrency; when absent, derived from the node's announced capacity. */
  perNodeConcurrency?: number;
  /** Hears breaker state changes of every node (metrics). */
  onBreakerChange?: (nodeId: string, to: BreakerState) => void;
}

/** Backoff between attempts to (re)open an upstream session, ms. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

/** Status of one hosted server on a node, for `/api/v1/nodes`. */
export interface HostedServerStatus {
  name: string;
  path: string;
  url: string;
  toolDigest: string;
  toolCount: number;
  connected: boolean;
  inflight: number;
}

/**
 * One node of the mesh as the router sees it: its registry record, one pooled upstream session per hosted
 * server, and its protection (breaker → queue). It keeps the catalog's view of the node current: a
 * server's listing is in the catalog only while its session works.
 */
export class NodeEndpoint implements ReplicaView {
  private node: RegisteredNode;
  private readonly guard: NodeGuard;
  private readonly sessions = new Map<string, UpstreamSession>();
  private readonly reconnectTimers = new Map<string, NodeJS.Timeout>();
  private readonly refreshes = new Map<string, { running: boolean; again: boolean }>();
  /** Calls waiting in the queue, failed at once when the node leaves. */
  private readonly waiting = new Set<AbortController>();
  private outstandingCalls = 0;
  private closed = false;
  private readonly logger: Logger;

  constructor(node: RegisteredNode, private readonly deps: NodeEndpointDeps) {
    this.node = node;
    this.logger = deps.logger.child({ nodeId: node.record.nodeId });
    const nodeId = node.record.nodeId;
    this.guard = new NodeGuard(
      nodeId,
      { concurrency: this.concurrencyFor(node), ...(deps.onBreakerChange ? { onBreakerChange: (to: BreakerState) => deps.onBreakerChange!(nodeId, to) } : {}) },
      this.logger,
    );
    for (const hosted of node.record.servers) this.openSession(hosted, 0);
  }

  get nodeId(): string {
    return this.node.record.nodeId;
  }

  get record(): RegisteredNode['record'] {
    return this.node.record;
  }

  get registered(): RegisteredNode {
    return this.node;
  }

  get outstanding(): number {
    return this.outstandingCalls;
  }

  get capacity(): number {
    return this.node.record.capacity;
  }

  get draining(): boolean {
    return this.node.record.draining || this.node.ping?.status === 'draining';
  }

  get breakerState(): BreakerState {
    return this.guard.breakerState;
  }

  get queued(): number {
    return this.guard.queued;
  }

  get running(): number {
    return this.guard.running;
  }

  /** Whether new calls for `server` may be placed here now. */
  canServe(server: string): boolean {
    return !this.closed && !this.draining && this.guard.breakerState !== 'open' && this.sessions.get(server)?.connected === true;
  }

  /** The working upstream session to `server`, for subscriptions (calls go through {@link call}). */
  connectedSession(server: string): UpstreamSession | undefined {
    const session = this.sessions.get(server);
    return !this.closed && session?.connected ? session : undefined;
  }

  /** Whether at least one hosted server has a working session. */
  get connected(): boolean {
    for (const s of this.sessions.values()) if (s.connected) return true;
    return false;
  }

  serverStatus(): HostedServerStatus[] {
    return this.node.record.servers.map((s) => {
      const session = this.sessions.get(s.name);
      return {
        name: s.name,
        path: s.path,
        url: session?.url ?? '',
        toolDigest: s.toolDigest,
        toolCount: s.toolCount,
        connected: session?.connected ?? false,
        inflight: session?.inflightCount ?? 0,
      };
    });
  }

  /** Applies a newer registry view of the node (same instance): servers added, removed or changed, draining. */
  update(node: RegisteredNode): void {
    const before = new Map(this.node.record.servers.map((s) => [s.name, s]));
    this.node = node;
    const after = new Map(node.record.servers.map((s) => [s.name, s]));
    for (const [name] of before) if (!after.has(name)) this.closeSession(name, 'server no longer hosted');
    for (const [name, hosted] of after) {
      const old = before.get(name);
      if (!old) this.openSession(hosted, 0);
      else if (old.path !== hosted.path) {
        this.closeSession(name, 'server moved');
        this.openSession(hosted, 0);
      } else if (old.toolDigest !== hosted.toolDigest) this.refreshListing(name);
    }
  }

  /**
   * Runs one request on `server` here, through the breaker and the queue. Rejects with
   * {@link UpstreamFailure}, a `JsonRpcError` from the server, or {@link CallCancelledError}.
   */
  async call<S extends AnySchema>(server: string, request: ClientRequest, schema: S, options: UpstreamRequestOptions): Promise<SchemaOutput<S>> {
    const session = this.sessions.get(server);
    if (this.closed || !session?.connected) throw new UpstreamFailure('refused', this.nodeId, `no working session to ${server}`, false);
    this.outstandingCalls++;
    const waiting = new AbortController();
    const onCancel = (): void => waiting.abort(new CallCancelledError('cancelled by the client'));
    options.signal.addEventListener('abort', onCancel, { once: true });
    this.waiting.add(waiting);
    try {
      return await this.guard.run(() => {
        this.waiting.delete(waiting);
        return session.request(request, schema, options);
      }, waiting.signal);
    } finally {
      this.waiting.delete(waiting);
      options.signal.removeEventListener('abort', onCancel);
      this.outstandingCalls--;
    }
  }

  /**
   * The node left (stale, deregistered, replaced): fails queued calls as never started, running calls
   * as lost, and removes the node from the catalog. `terminate` ends upstream sessions politely (router stop).
   */
  async close(reason: string, terminate = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.reconnectTimers.values()) clearTimeout(t);
    this.reconnectTimers.clear();
    for (const w of this.waiting) w.abort(new UpstreamFailure('refused', this.nodeId, reason, false));
    this.waiting.clear();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    this.deps.catalog.removeNode(this.nodeId);
    await Promise.all(sessions.map((s) => s.close(`node ${this.nodeId} ${reason}`, terminate)));
    this.guard.shutdown();
  }

  private concurrencyFor(node: RegisteredNode): number {
    // Twice the node's capacity keeps its own queue fed without letting one router flood it.
    return this.deps.perNodeConcurrency ?? Math.max(16, node.record.capacity * 2);
  }

  private openSession(hosted: HostedServer, attempt: number): void {
    if (this.closed) return;
    const session = new UpstreamSession(this.nodeId, hosted, this.node.record.mcpBaseUrl, this.deps.dispatcher, this.deps.relay, {
      onListChanged: (s) => {
        if (this.sessions.get(s.server) === s) this.refreshListing(s.server);
      },
      onLost: (s, reason) => {
        if (this.sessions.get(s.server) !== s) return;
        this.logger.warn({ server: s.server, reason }, 'upstream session lost; reconnecting');
        this.sessions.delete(s.server);
        this.deps.catalog.removeListing(s.server, this.nodeId);
        void s.close(reason);
        this.scheduleReconnect(hosted.name, 0);
      },
    }, this.logger);
    this.sessions.set(hosted.name, session);
    void (async () => {
      try {
        await session.connect();
        const listing = await session.fetchListing();
        if (this.closed || this.sessions.get(hosted.name) !== session || !session.connected) return;
        this.deps.catalog.setListing(hosted.name, this.nodeId, listing);
        this.logger.info(
          { server: hosted.name, url: session.url, tools: listing.tools.length, resources: listing.resources.length, prompts: listing.prompts.length },
          'upstream session ready',
        );
      } catch (err) {
        if (this.closed || this.sessions.get(hosted.name) !== session) return;
        this.sessions.delete(hosted.name);
        await session.close('connect failed');
        const log = attempt === 0 ? this.logger.warn.bind(this.logger) : this.logger.debug.bind(this.logger);
        log({ server: hosted.name, url: session.url, err, attempt }, 'cannot open upstream session; retrying');
        this.scheduleReconnect(hosted.name, attempt + 1);
      }
    })();
  }

  private scheduleReconnect(server: string, attempt: number): void {
    if (this.closed || this.reconnectTimers.has(server)) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** attempt);
    const timer = setTimeout(() => {
      this.reconnectTimers.delete(server);
      const hosted = this.node.record.servers.find((s) => s.name === server);
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
    this.deps.catalog.removeListing(server, this.nodeId);
    if (session) void session.close(reason);
  }

  /** Refetches a server's lists; coalesces bursts of list_changed into at most one extra fetch. */
  private refreshListing(server: string): void {
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
          if (!session?.connected || this.closed) return;
          const listing = await session.fetchListing();
          if (this.sessions.get(server) === session && session.connected && !this.closed) this.deps.catalog.setListing(server, this.nodeId, listing);
        } while (current.again);
      } catch (err) {
        this.logger.warn({ server, err }, 'cannot refresh upstream lists');
      } finally {
        current.running = false;
      }
    })();
  }
}
