import type { ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import type { Caller } from '../auth/Caller.js';
import type { JSONRPCMessage, ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { CatalogChange } from '../catalog/CatalogEntries.js';
import { profileKey } from '../catalog/ProfileListings.js';
import { BALANCED, type CallPlacement } from '../forwarding/CallPlacement.js';
import type { ClientCallContext } from '../forwarding/ClientCallContext.js';
import { upstreamKey, type SessionChange } from '../sessions/SessionRecord.js';
import type { StoredRecord } from '../sessions/SessionStore.js';
import type { ClientHello } from '../sessions/SessionTokens.js';
import type { UpstreamPeer } from '../upstream/UpstreamPeer.js';
import type { KnownSession, ListKind, UpstreamSession } from '../upstream/UpstreamSession.js';
import type { ClientStreams, PoolClient, PoolNode } from '../upstream/UpstreamSessionPool.js';
import { ClientCatalogView } from './ClientCatalogView.js';
import { ClientMessageRelay, type ClientChannel } from './ClientMessageRelay.js';
import type { ClientResponse } from './mcp/OutboundRequests.js';
import type { ClientSessionServices } from './ClientSessionServices.js';
import { ClientSubscriptions } from './ClientSubscriptions.js';
import { installSessionHandlers } from './handlers/installSessionHandlers.js';
import { mayRerun } from './mayRerun.js';
import { FrontSession } from './mcp/FrontSession.js';
import type { InboundRequest } from './mcp/InboundRequest.js';
import { MethodTable } from './mcp/MethodTable.js';
import { OutboundRequests } from './mcp/OutboundRequests.js';
import type { SessionContext } from './SessionContext.js';
import { SessionState } from './SessionState.js';

/** What the router tells every client it can do. */
export const ROUTER_CAPABILITIES: ServerCapabilities = {
  tools: { listChanged: true },
  resources: { listChanged: true, subscribe: true },
  prompts: { listChanged: true },
  completions: {},
  logging: {},
  tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
};

/** The router's name and version, as clients see it. */
export const ROUTER_SERVER_INFO = { name: 'flotilla-router', version: '0.1.0' };

/** Who a client session is: its id, its stable id, and what the client said at initialize. */
export interface SessionIdentity {
  /** The client-facing session id (`Mcp-Session-Id`, sealed). */
  readonly sessionId: string;
  /** The stable id inside it, which keys the session's shared state. */
  readonly sid: string;
  readonly hello: ClientHello;
  /** The principal the session belongs to (sealed into its id); absent when the router runs open. */
  readonly principal?: string;
}

/**
 * One MCP client session on this router replica: its conversation with the client ({@link FrontSession}
 * over the method table its handlers fill), and everything the client has set up across the mesh: its
 * own upstream session on each node × server it uses (from the session pool, opened on first use with the
 * client's capabilities and client info), its log level, sticky bindings, subscriptions and tasks
 * ({@link SessionState}), and its view of the catalog. Server messages of its upstream sessions reach this
 * client only.
 */
export class ClientSession implements PoolClient, SessionContext {
  readonly state: SessionState;
  readonly methods = new MethodTable();
  readonly streams: ClientStreams;
  readonly front: FrontSession;
  readonly view: ClientCatalogView;
  readonly subscriptions: ClientSubscriptions;
  readonly peer: UpstreamPeer;
  /** Relays server messages that belong to no call to the client's standalone stream. */
  private readonly relay: ClientMessageRelay;
  private lastActivity = Date.now();
  /** When a server's message last went to the client on its standalone stream. */
  private lastServerMessage = Date.now();
  private lastTouch = Date.now();
  private closed = false;
  private pendingListChange: CatalogChange | undefined;
  /** The caller of the session's latest request (front door): identity, metrics label, grants. */
  caller: Caller | undefined;
  private readonly sessionLogger: Logger;

  constructor(
    readonly services: ClientSessionServices,
    readonly identity: SessionIdentity,
    private readonly onClosed: (session: ClientSession) => void,
    /** The session's shared record, when another replica started it. */
    stored?: StoredRecord,
  ) {
    const { hello } = identity;
    this.sessionLogger = identity.principal !== undefined ? services.logger.child({ principal: identity.principal }) : services.logger;
    this.state = new SessionState((change) => this.persist(change), stored);
    this.streams = {
      holdsHere: () => this.front.hasStandaloneStream,
      handOff: (node, server, known) => this.services.replicas.handOff(identity.sid, { nodeId: node.nodeId, instanceId: node.instanceId, server, ...known }),
    };
    this.front = new FrontSession({
      sessionId: identity.sessionId,
      sid: identity.sid,
      protocolVersion: hello.protocolVersion,
      methods: this.methods,
      outbound: new OutboundRequests(services.replicaTag),
      logger: services.logger,
      reconnectGraceMs: services.reconnectGraceMs,
      mayRerun: (method, params) => mayRerun(services.catalog, method, params),
      sealTicket: (ticket) => services.tokens.sealTicket(ticket),
      openTicket: (sealed) => services.tokens.openTicket(sealed),
      forwardResponse: (replica, response) => services.replicas.forwardResponse(identity.sid, replica, response),
      forwardCancel: (requestId, reason) => services.replicas.forwardCancel(identity.sid, requestId, reason),
      standaloneOpened: () => this.holdClientStream(),
    });
    this.relay = new ClientMessageRelay(this.standaloneChannel(), services.clientRequestTimeoutMs, services.logger);
    this.peer = {
      clientInfo: hello.clientInfo,
      capabilities: hello.capabilities,
      protocolVersion: hello.protocolVersion,
      ...(identity.principal !== undefined ? { identity: identity.principal } : {}),
      sink: this.relay,
    };
    this.view = new ClientCatalogView({
      catalog: services.catalog,
      profiles: services.profiles,
      peer: this.peer,
      profileKey: profileKey(hello.capabilities, hello.protocolVersion),
      ownSession: (server) => this.ownSessions(server)[0],
      grants: () => this.caller?.grants,
    });
    this.subscriptions = new ClientSubscriptions(this);
    installSessionHandlers(this);
  }

  /** The client session's id (the router's `Mcp-Session-Id`). */
  get id(): string {
    return this.identity.sessionId;
  }

  get sessionId(): string {
    return this.identity.sessionId;
  }

  get logger(): Logger {
    return this.sessionLogger;
  }

  /** Whether the session saw no HTTP traffic for `idleMs` and has nothing running or open here. */
  idleFor(idleMs: number, now = Date.now()): boolean {
    return !this.front.busy && now - this.lastActivity > idleMs;
  }

  /**
   * Whether the session holds streams open that do nothing: no request of the client runs, the client
   * sent none for `idleMs`, and no server sent it anything on its standalone stream for as long.
   */
  streamsIdleFor(idleMs: number, now = Date.now()): boolean {
    return this.front.busy && this.front.running === 0 && now - this.lastActivity > idleMs && now - this.lastServerMessage > idleMs;
  }

  /** The session's stable id (the key of its shared record). */
  get sid(): string {
    return this.identity.sid;
  }

  /** Handles a POST's messages for this session. */
  async post(messages: readonly JSONRPCMessage[], res: ServerResponse): Promise<void> {
    this.active(res);
    await this.front.post(messages, res);
  }

  /** Handles a GET: the standalone stream, or resuming a broken one (`Last-Event-ID`). */
  async get(res: ServerResponse, lastEventId: string | undefined): Promise<void> {
    this.active(res);
    await this.front.get(res, lastEventId);
  }

  /** Notes activity: the session is not idle here, and its shared record is touched now and then so it does not expire. */
  private active(res: ServerResponse): void {
    const now = Date.now();
    this.lastActivity = now;
    res.once('close', () => (this.lastActivity = Date.now()));
    if (now - this.lastTouch > this.services.touchEveryMs) {
      this.lastTouch = now;
      void this.persist({ kind: 'touch' });
    }
  }

  /** Tells the client which lists changed (on its standalone stream), coalescing what arrives in one tick. */
  notifyListChanged(change: CatalogChange): void {
    if (this.closed) return;
    if (this.pendingListChange) {
      this.pendingListChange.tools ||= change.tools;
      this.pendingListChange.resources ||= change.resources;
      this.pendingListChange.prompts ||= change.prompts;
      return;
    }
    this.pendingListChange = { ...change };
    setImmediate(() => {
      const c = this.pendingListChange!;
      this.pendingListChange = undefined;
      if (this.closed) return;
      if (c.tools) this.front.notify({ method: 'notifications/tools/list_changed' });
      if (c.resources) this.front.notify({ method: 'notifications/resources/list_changed' });
      if (c.prompts) this.front.notify({ method: 'notifications/prompts/list_changed' });
    });
  }

  /**
   * Ends the session for good (the client's DELETE): its shared record, and its upstream sessions on every
   * node (those other replicas opened too).
   */
  async end(): Promise<void> {
    if (this.closed) return;
    for (const binding of Object.values(this.state.snapshot().upstreams)) this.services.upstreamNodes.session(this, binding);
    await this.unload(true);
    await this.services.store.delete(this.sid).catch((err: unknown) => this.logger.warn({ err, sessionId: this.sid }, 'could not delete the session record'));
  }

  /**
   * Lets go of the session on this replica only (idle here, ended elsewhere, router stopping): its streams
   * and local objects close; `terminate` also ends its upstream sessions on the nodes.
   */
  async unload(terminate = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.stop();
    this.front.close();
    await this.services.pool.closeClient(this.id, terminate).catch((err: unknown) => this.logger.debug({ err }, 'error closing upstream sessions'));
    this.onClosed(this);
  }

  /** Takes a newer shared record another replica wrote. */
  adopt(stored: StoredRecord): void {
    this.state.adopt(stored);
  }

  /** Cancels a client request if it runs here. */
  cancel(requestId: string | number, reason: string): boolean {
    return this.front.cancel(requestId, reason);
  }

  /** A client answer forwarded by another replica. */
  acceptResponse(response: ClientResponse): void {
    this.front.acceptResponse(response);
  }

  // ---- PoolClient: this client's upstream sessions ----

  async sessionOpened(session: UpstreamSession): Promise<void> {
    const level = this.state.logLevel;
    if (level === undefined || !session.serverCapabilities.logging) return;
    await session.request('logging/setLevel', { level }, { signal: AbortSignal.timeout(10_000), timeoutMs: 5000, duringOpen: true });
  }

  sessionLost(session: UpstreamSession, reason: string, node: PoolNode): void {
    if (this.closed) return;
    if (this.state.upstream(upstreamKey(node.instanceId, session.server))?.sessionId === session.sessionId) {
      this.state.setUpstream(upstreamKey(node.instanceId, session.server), undefined);
    }
    this.logger.info({ sessionId: this.identity.sid, nodeId: session.nodeId, server: session.server, reason }, 'an upstream session of this client was lost');
    this.subscriptions.moveFrom(session.nodeId, session.server);
  }

  listChanged(session: UpstreamSession, list: ListKind): void {
    this.view.invalidate(session, list);
    this.notifyListChanged({ tools: list === 'tools', resources: list === 'resources', prompts: list === 'prompts', replicas: false });
  }

  keeps(session: UpstreamSession): boolean {
    return this.state.keeps(session.nodeId, session.server);
  }

  knownUpstream(node: PoolNode, server: string): KnownSession | undefined {
    const binding = this.state.upstream(upstreamKey(node.instanceId, server));
    return binding ? { sessionId: binding.sessionId, protocolVersion: binding.protocolVersion, capabilities: binding.capabilities } : undefined;
  }

  recordUpstream(node: PoolNode, server: string, session: KnownSession): void {
    this.state.setUpstream(upstreamKey(node.instanceId, server), { nodeId: node.nodeId, instanceId: node.instanceId, server, ...session });
  }

  // ---- SessionContext: what the handlers use ----

  ownSessions(server: string): UpstreamSession[] {
    const bound = this.state.binding(server).nodeId;
    return this.services.pool
      .ofClient(this.id)
      .filter((s) => s.server === server && s.connected)
      .sort((a, b) => (a.nodeId === bound ? -1 : b.nodeId === bound ? 1 : b.lastUsedAt - a.lastUsedAt));
  }

  allOwnSessions(): UpstreamSession[] {
    return this.services.pool.ofClient(this.id).filter((s) => s.connected);
  }

  placementFor(server: string): CallPlacement {
    return this.services.servers.isSticky(server) ? { kind: 'sticky', binding: this.state.binding(server) } : BALANCED;
  }

  statePlacementFor(server: string): CallPlacement {
    if (this.services.servers.isSticky(server)) return this.placementFor(server);
    const nodeIds = this.ownSessions(server).map((s) => s.nodeId);
    return nodeIds.length ? { kind: 'preferred', nodeIds } : BALANCED;
  }

  callContext(request: InboundRequest): ClientCallContext {
    const channel: ClientChannel = {
      sendNotification: async (n) => request.notify(n),
      sendRequest: (r, options) => request.ask(r, { timeoutMs: options.timeout ?? this.services.clientRequestTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) }),
      capabilities: () => this.identity.hello.capabilities,
      logLevel: () => this.state.logLevel,
    };
    return {
      sessionId: this.id,
      requestId: request.id,
      signal: request.signal,
      meta: request.meta,
      progressToken: request.progressToken,
      sendNotification: channel.sendNotification,
      sink: new ClientMessageRelay(channel, this.services.clientRequestTimeoutMs, this.logger, request.signal),
      upstream: this,
      ...(this.identity.principal !== undefined ? { principal: this.identity.principal } : {}),
    };
  }

  backgroundContext(label: string): ClientCallContext {
    return {
      sessionId: this.id,
      requestId: label,
      signal: new AbortController().signal,
      meta: undefined,
      progressToken: undefined,
      sendNotification: () => Promise.resolve(),
      sink: this.relay,
      upstream: this,
    };
  }

  /**
   * What servers send outside calls goes to the client's standalone stream: here when this replica holds
   * it, else through the replica that does.
   */
  private standaloneChannel(): ClientChannel {
    return {
      sendNotification: async (n) => {
        this.lastServerMessage = Date.now();
        if (this.front.hasStandaloneStream) this.front.notify(n);
        else this.services.replicas.push(this.sid, n);
      },
      sendRequest: (r, options) => {
        const timeoutMs = options.timeout ?? this.services.clientRequestTimeoutMs;
        this.lastServerMessage = Date.now();
        if (this.front.hasStandaloneStream) return this.front.ask(r, { timeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
        return this.services.replicas.ask(this.sid, r, timeoutMs);
      },
      capabilities: () => this.identity.hello.capabilities,
      logLevel: () => this.state.logLevel,
    };
  }

  /**
   * The client's standalone stream opened here: this replica takes what other replicas have for it, and
   * holds the standalone streams of the client's upstream sessions (a node allows one per session, and
   * what comes on it is for this stream). Returns the release, run when the stream closes.
   */
  private holdClientStream(): () => void {
    const release = this.services.replicas.hold(this.sid, {
      push: (m) => {
        this.lastServerMessage = Date.now();
        this.front.notify(m);
      },
      ask: (r, timeoutMs) => {
        this.lastServerMessage = Date.now();
        return this.front.ask(r, { timeoutMs });
      },
      takeStream: async (binding) => {
        await this.services.upstreamNodes.session(this, binding)?.holdStream();
      },
    });
    for (const binding of Object.values(this.state.snapshot().upstreams)) void this.services.upstreamNodes.session(this, binding)?.holdStream();
    return () => {
      release();
      for (const s of this.services.pool.ofClient(this.id)) s.releaseStream();
    };
  }

  private async persist(change: SessionChange): Promise<StoredRecord | undefined> {
    try {
      return await this.services.store.change(this.sid, change);
    } catch (err) {
      this.logger.warn({ err, sessionId: this.sid, change: change.kind }, 'could not save a change of the session state; other replicas do not see it');
      return undefined;
    }
  }
}
