import { performance } from 'node:perf_hooks';
import { FlotillaErrorCode, serverAffinity, type HostedServer } from '@flotilla/protocol';
import type { RegisteredNode } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import type { CallOptions, ForwardTarget, Unavailability, UpstreamCall } from './ForwardTarget.js';
import type { LoadSignals, ReportedCallProgress, ReportedLoad, ToolLatencyEstimate } from '../balancer/LoadSignals.js';
import type { Catalog } from '../catalog/Catalog.js';
import type { ServerListing } from '../catalog/ServerListing.js';
import type { NodeLoadView } from '../discovery/NodeLoadView.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import type { UpstreamDispatchers } from '../upstream/McpHttpChannel.js';
import { CallCancelledError, UpstreamFailure } from '../upstream/UpstreamFailure.js';
import type { UpstreamPeer } from '../upstream/UpstreamPeer.js';
import type { UpstreamSession } from '../upstream/UpstreamSession.js';
import type { PoolClient, PoolNode, UpstreamSessionPool } from '../upstream/UpstreamSessionPool.js';
import { NodeGuard, type BreakerState } from './NodeGuard.js';
import { NodeLatency } from './NodeLatency.js';
import { NodeListings } from './NodeListings.js';
import { OwnCallLedger } from './OwnCallLedger.js';

/** What a {@link NodeEndpoint} needs from the router. */
export interface NodeEndpointDeps {
  catalog: Catalog;
  dispatchers: UpstreamDispatchers;
  /** Where clients' own upstream sessions live. */
  pool: UpstreamSessionPool;
  /** The router itself, as the peer of its listing sessions. */
  routerPeer: UpstreamPeer;
  logger: Logger;
  /** Fixed per-node concurrency; when absent, derived from the node's announced capacity. */
  perNodeConcurrency?: number;
  /** Hears breaker state changes of every node (metrics). */
  onBreakerChange?: (nodeId: string, to: BreakerState) => void;
  /** Hears state changes of every per-tool breaker (`tool` is `<server>/<tool>`). */
  onToolBreakerChange?: (nodeId: string, tool: string, to: BreakerState) => void;
  /** The NATS load and progress reports, for load-aware balancing; without it only own counts are known. */
  loadView?: NodeLoadView;
}

/** A load report older than this is not trusted for counts (the node may be gone or cut off from NATS), ms. */
export const LOAD_REPORT_FRESH_MS = 3000;

/** `<server>/<tool>` of a `tools/call` request: the key of per-tool statistics and breakers. */
export function toolKeyOf(server: string, request: UpstreamCall): string | undefined {
  if (request.method !== 'tools/call') return undefined;
  const name = request.params['name'];
  return typeof name === 'string' ? `${server}/${name}` : undefined;
}

/** Status of one hosted server on a node, for `/api/v1/nodes`. */
export interface HostedServerStatus {
  name: string;
  path: string;
  toolDigest: string;
  toolCount: number;
  connected: boolean;
  /** Calls in flight there through this router. */
  inflight: number;
  /** Clients' own upstream sessions to the server on this node. */
  clientSessions: number;
  /** Per-tool breakers of this server's tools on this node that have seen failures, by upstream tool name. */
  toolBreakers: Record<string, BreakerState>;
}

/**
 * One node of the mesh as the router sees it: its registry record, the router's own listing session per
 * hosted server (which keeps the catalog's view of the node current: a server's listing is in the catalog
 * only while that session works), and its protection (breaker → queue). Calls run on the calling client's
 * own upstream session, from the session pool.
 */
export class NodeEndpoint implements ForwardTarget {
  private node: RegisteredNode;
  private readonly guard: NodeGuard;
  private readonly listings: NodeListings;
  private readonly poolNode: PoolNode;
  /** Calls waiting in the queue, failed at once when the node leaves. */
  private readonly waiting = new Set<AbortController>();
  private readonly ledger = new OwnCallLedger();
  private readonly latency = new NodeLatency();
  private closed = false;
  /** Left the mesh gracefully: out of the catalog and rotation, finishing the calls it has. */
  private retiring = false;
  private idleWaiters: Array<() => void> = [];
  private readonly logger: Logger;
  private parsedAddress: { base: string; address: { host: string; port: number } } | undefined;

  constructor(node: RegisteredNode, private readonly deps: NodeEndpointDeps) {
    this.node = node;
    this.logger = deps.logger.child({ nodeId: node.record.nodeId });
    const nodeId = node.record.nodeId;
    this.guard = new NodeGuard(
      nodeId,
      {
        concurrency: this.concurrencyFor(node),
        ...(deps.onBreakerChange ? { onBreakerChange: (to: BreakerState) => deps.onBreakerChange!(nodeId, to) } : {}),
        ...(deps.onToolBreakerChange ? { onToolBreakerChange: (tool: string, to: BreakerState) => deps.onToolBreakerChange!(nodeId, tool, to) } : {}),
      },
      this.logger,
    );
    this.poolNode = { nodeId, instanceId: node.record.instanceId, mcpBaseUrl: node.record.mcpBaseUrl };
    this.listings = new NodeListings(
      { nodeId, catalog: deps.catalog, dispatchers: deps.dispatchers, peer: deps.routerPeer, logger: this.logger },
      node.record.mcpBaseUrl,
    );
    this.listings.apply(node.record.servers);
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
    return this.ledger.outstanding;
  }

  get capacity(): number {
    return this.node.record.capacity;
  }

  /** Draining as the registry says, or as the node's fresh load report says (whichever is first to tell). */
  get draining(): boolean {
    if (this.node.record.draining || this.node.ping?.status === 'draining') return true;
    const latest = this.deps.loadView?.latestLoad(this.nodeId);
    return latest !== undefined && latest.load.draining && Date.now() - latest.receivedAt <= LOAD_REPORT_FRESH_MS;
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

  /** State of the breaker of `tool` (`<server>/<tool>`) on this node. */
  toolBreakerState(tool: string): BreakerState {
    return this.guard.toolBreakerState(tool);
  }

  /** Every per-tool breaker on this node (one per tool called here), by `<server>/<tool>`; for the metrics. */
  toolBreakerStates(): Record<string, BreakerState> {
    return this.guard.toolBreakerStates();
  }

  /** Whether new calls for `server` (and `tool`, `<server>/<tool>`, when given) may be placed here now. */
  canServe(server: string, tool?: string): boolean {
    return this.unavailability(server, tool) === undefined;
  }

  /** Why new calls for `server` (and `tool`) may not be placed here now; undefined when they may. */
  unavailability(server: string, tool?: string): Unavailability | undefined {
    if (this.closed || this.retiring) return 'left';
    if (this.draining) return 'draining';
    if (this.guard.breakerState === 'open') return 'breaker_open';
    if (tool !== undefined && this.guard.toolBreakerState(tool) === 'open') return 'tool_breaker_open';
    if (!this.listings.serves(server)) return 'disconnected';
    return undefined;
  }

  /** Host and port of the node's MCP endpoint (from its registry record), parsed once per record URL: it is read on every call. */
  get address(): { host: string; port: number } {
    const base = this.node.record.mcpBaseUrl;
    if (this.parsedAddress?.base === base) return this.parsedAddress.address;
    const url = new URL(base);
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    // URL keeps IPv6 hosts in brackets; server.address wants the bare address.
    const address = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
    this.parsedAddress = { base, address };
    return address;
  }


  /** p95 of `tool`'s recent response times on this node as this router measured them, once there are enough samples. */
  latencyP95Ms(tool: string): number | undefined {
    return this.latency.p95Ms(tool);
  }

  /**
   * What the balancer knows about this node at `now`: its load report if fresh (with the progress of its
   * running calls), its reported per-tool EWMAs, this router's calls split by whether the report can show
   * them, and the latencies this router measured.
   */
  loadSignals(now: number): LoadSignals {
    const reports = this.deps.loadView?.reports(this.nodeId, now);
    const load = reports?.load;
    const receivedAt = reports?.loadReceivedAt;
    const fresh = load !== undefined && receivedAt !== undefined && now - receivedAt <= LOAD_REPORT_FRESH_MS;
    const own = this.ledger.versusReport(fresh ? receivedAt : undefined, now);
    const reportedTools: Record<string, ToolLatencyEstimate> = {};
    if (load) {
      for (const [tool, stats] of Object.entries(load.tools)) {
        reportedTools[tool] = { ewmaMs: stats.ewmaMs, ageMs: Math.max(0, now - (reports!.toolRefreshedAt[tool] ?? receivedAt ?? now)) };
      }
    }
    let report: ReportedLoad | undefined;
    const progress: ReportedCallProgress[] = [];
    if (fresh) {
      report = { ageMs: now - receivedAt, inflight: load.inflight, queued: load.queued, capacity: load.capacity };
      for (const p of reports!.progress) {
        if (now - p.receivedAt > LOAD_REPORT_FRESH_MS || own.unseenCallIds.has(p.progress.callId)) continue;
        progress.push({
          tool: `${p.progress.server}/${p.progress.tool}`,
          progress: p.progress.progress,
          ...(p.progress.total !== undefined ? { total: p.progress.total } : {}),
          elapsedMs: p.progress.elapsedMs,
          ageMs: now - p.receivedAt,
        });
      }
    }
    const peakEwmaMs = this.latency.peakEwmaMs(now);
    return {
      ...(report ? { report } : {}),
      progress,
      reportedTools,
      own: { outstanding: this.ledger.outstanding, unseen: own.unseen, finishedSinceReport: own.finishedSinceReport },
      measured: { ...(peakEwmaMs !== undefined ? { peakEwmaMs } : {}), tools: this.latency.toolEstimates(now) },
    };
  }

  /** Whether at least one hosted server has a working listing session. */
  get connected(): boolean {
    return this.listings.anyConnected;
  }

  /** The hosted server `server` as the node announced it. */
  hostedServer(server: string): HostedServer | undefined {
    return this.node.record.servers.find((s) => s.name === server);
  }

  /** What `server` here shows a client with `peer`'s capabilities (read on a throwaway session). */
  async listingFor(server: string, peer: UpstreamPeer): Promise<ServerListing> {
    const hosted = this.hostedServer(server);
    if (!hosted || this.closed || this.retiring) throw new UpstreamFailure('refused', this.nodeId, `no working session to ${server}`, false);
    return this.listings.readAs(hosted, peer);
  }

  /** The client's session to `server` here, from the pool (taken up when another replica opened it); undefined when it cannot be had. */
  clientSession(client: PoolClient, server: string, instanceId: string): UpstreamSession | undefined {
    const hosted = this.hostedServer(server);
    if (!hosted || this.closed || this.retiring || instanceId !== this.poolNode.instanceId) return undefined;
    try {
      return this.deps.pool.acquire(client, this.poolNode, hosted);
    } catch {
      return undefined;
    }
  }

  /** Whether the server keeps per-session state and asked for sticky affinity. */
  isSticky(server: string): boolean {
    const hosted = this.hostedServer(server);
    return hosted !== undefined && serverAffinity(hosted) === 'sticky';
  }

  serverStatus(): HostedServerStatus[] {
    const breakers = this.guard.toolBreakerStates();
    const clientSessions = this.deps.pool.ofInstance(this.poolNode.instanceId);
    return this.node.record.servers.map((s) => {
      const listing = this.listings.session(s.name);
      const toolBreakers: Record<string, BreakerState> = {};
      for (const [key, state] of Object.entries(breakers)) if (key.startsWith(`${s.name}/`)) toolBreakers[key.slice(s.name.length + 1)] = state;
      let inflight = 0;
      let sessions = 0;
      for (const c of clientSessions) {
        if (c.server !== s.name) continue;
        sessions++;
        inflight += c.inflightCount;
      }
      return {
        name: s.name,
        path: s.path,
        toolDigest: s.toolDigest,
        toolCount: s.toolCount,
        connected: listing !== undefined,
        inflight,
        clientSessions: sessions,
        toolBreakers,
      };
    });
  }

  /** Applies a newer registry view of the node (same instance): servers added, removed or changed, draining. */
  update(node: RegisteredNode): void {
    this.node = node;
    this.listings.apply(node.record.servers);
  }

  /**
   * Runs one request on `server` here, through the breaker and the queue, on the calling client's own
   * upstream session (opened on first use). Resolves with the server's result, untouched. Rejects with
   * {@link UpstreamFailure}, a `JsonRpcError` from the server, or {@link CallCancelledError}.
   */
  async call(server: string, request: UpstreamCall, options: CallOptions): Promise<Record<string, unknown>> {
    if (this.closed || this.retiring) throw new UpstreamFailure('refused', this.nodeId, 'node left the mesh', false);
    const hosted = this.hostedServer(server);
    if (!hosted || !this.listings.serves(server)) throw new UpstreamFailure('refused', this.nodeId, `no working session to ${server}`, false);
    const tool = toolKeyOf(server, request);
    const { callId } = options;
    this.ledger.placed(callId, tool, Date.now());
    const waiting = new AbortController();
    const onCancel = (): void => waiting.abort(new CallCancelledError('cancelled by the client'));
    options.signal.addEventListener('abort', onCancel, { once: true });
    this.waiting.add(waiting);
    const placedAt = performance.now();
    try {
      return await this.guard.run(
        async () => {
          this.waiting.delete(waiting);
          // A client's first call here opens its session first; that handshake is not the tool's latency.
          const session = await this.openSessionFor(hosted, options);
          this.ledger.sent(callId, Date.now());
          const sentAt = performance.now();
          options.ondequeued?.(sentAt - placedAt);
          try {
            const result = await this.send(session, hosted, request, options);
            this.latency.observe(tool, performance.now() - sentAt, Date.now());
            return result;
          } catch (err) {
            // The server's own error answer is a response time too; node trouble and cancellations are not.
            if (err instanceof JsonRpcError) this.latency.observe(tool, performance.now() - sentAt, Date.now());
            throw this.drainingRefusal(err) ?? err;
          }
        },
        waiting.signal,
        tool,
      );
    } finally {
      this.waiting.delete(waiting);
      options.signal.removeEventListener('abort', onCancel);
      this.ledger.ended(callId, Date.now());
      this.deps.loadView?.callEnded(this.nodeId, callId);
      if (this.ledger.outstanding === 0 && this.idleWaiters.length > 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /**
   * Sends the request on `session`. A node that no longer knows the client's session (its server
   * restarted, or it expired the session) never saw the request: it goes once more on a fresh session.
   */
  private async send(session: UpstreamSession, hosted: HostedServer, request: UpstreamCall, options: CallOptions): Promise<Record<string, unknown>> {
    try {
      return await session.request(request.method, request.params, options);
    } catch (err) {
      if (!(err instanceof UpstreamFailure && err.sessionGone && options.client)) throw err;
      this.logger.info({ server: hosted.name, clientSession: options.client.id }, 'node no longer knows the client session; opening a new one');
      const fresh = await this.openSessionFor(hosted, options);
      return fresh.request(request.method, request.params, options);
    }
  }

  /** The client's session (the router's own without a client), open. */
  private async openSessionFor(hosted: HostedServer, options: CallOptions): Promise<UpstreamSession> {
    let session: UpstreamSession;
    if (options.client) session = this.deps.pool.acquire(options.client, this.poolNode, hosted);
    else {
      const own = this.listings.session(hosted.name);
      if (!own) throw new UpstreamFailure('refused', this.nodeId, `no working session to ${hosted.name}`, false);
      session = own;
    }
    await session.open();
    return session;
  }

  /**
   * A connection that failed before any response, on a node that is draining, carried a call the node
   * never started: a draining agent answers new calls with NodeDraining and closes its connections only
   * once idle, so a request it sent nothing back for was cut off on the way in (typically a keep-alive
   * connection it closed as the request went out). Such a call may go to another replica, whatever the tool.
   */
  private drainingRefusal(err: unknown): UpstreamFailure | undefined {
    if (!(err instanceof UpstreamFailure) || err.kind !== 'lost' || !err.beforeResponse || !(this.draining || this.retiring)) return undefined;
    return new UpstreamFailure('refused', this.nodeId, `draining; the request got no response (${err.reason})`, false, FlotillaErrorCode.NodeDraining);
  }

  /**
   * Whether the node answers a ping within `timeoutMs` on one of its sessions (undefined when no session
   * works, which the sessions' own reconnect logic handles).
   */
  async checkLiveness(timeoutMs: number): Promise<boolean | undefined> {
    const session = this.listings.all().find((s) => s.connected);
    if (this.closed || !session) return undefined;
    return session.ping(timeoutMs);
  }

  /**
   * The node stopped reporting and does not answer (paused, wedged, cut off): opens its breaker so no new
   * call goes there, fails calls waiting in the router's queue as never started and running calls as lost,
   * so they fail over now instead of hanging until the client's timeout. Sessions stay open: a node that
   * resumes (SIGCONT) serves again once its breaker lets a trial call through.
   */
  markUnresponsive(reason: string): void {
    if (this.closed) return;
    this.guard.trip(reason);
    for (const w of this.waiting) w.abort(new UpstreamFailure('refused', this.nodeId, reason, false));
    this.waiting.clear();
    for (const s of this.upstreamSessions()) s.failInflight(`node ${this.nodeId} ${reason}`);
  }

  /** Every upstream session to this node: the router's listing sessions and the clients' own. */
  private upstreamSessions(): UpstreamSession[] {
    return [...this.listings.all(), ...this.deps.pool.ofInstance(this.poolNode.instanceId)];
  }

  /**
   * The node left the mesh gracefully (it was draining, then deregistered): it leaves the catalog and
   * rotation at once, calls still in this router's queue fail as never started (so they go elsewhere), and
   * calls already sent get up to `graceMs` to bring their answers home before the node is closed. A draining
   * agent deregisters the moment it has sent its last answer, so those answers may still be on the wire
   * when the registry says it left; failing them would lose calls that succeeded. If the node really dies
   * meanwhile, its connections say so and the calls fail over as usual.
   */
  async retire(reason: string, graceMs: number): Promise<void> {
    if (this.closed || this.retiring) return;
    this.retiring = true;
    this.deps.catalog.removeNode(this.nodeId);
    this.listings.stopReconnecting();
    for (const w of this.waiting) w.abort(new UpstreamFailure('refused', this.nodeId, reason, false));
    this.waiting.clear();
    if (this.ledger.outstanding > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    await this.close(reason);
  }

  /**
   * The node left (stale, deregistered, replaced): fails queued calls as never started, running calls
   * as lost, and removes the node from the catalog. `terminate` ends upstream sessions politely (router stop).
   */
  async close(reason: string, terminate = false): Promise<void> {
    if (this.closed) return;
    // After `retire` the catalog no longer has this node, and may already have its next instance.
    const inCatalog = !this.retiring;
    this.closed = true;
    this.retiring = false;
    this.listings.stopReconnecting();
    for (const w of this.waiting) w.abort(new UpstreamFailure('refused', this.nodeId, reason, false));
    this.waiting.clear();
    for (const w of this.idleWaiters.splice(0)) w();
    if (inCatalog) this.deps.catalog.removeNode(this.nodeId);
    const why = `node ${this.nodeId} ${reason}`;
    // Clients' sessions are not ended on the node: other router replicas may go on using them.
    await Promise.all([this.listings.close(why, terminate), this.deps.pool.closeInstance(this.poolNode.instanceId, why, false)]);
    this.guard.shutdown();
  }

  private concurrencyFor(node: RegisteredNode): number {
    // Twice the node's capacity keeps its own queue fed without letting one router flood it.
    return this.deps.perNodeConcurrency ?? Math.max(16, node.record.capacity * 2);
  }
}
