import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type ClientCapabilities,
  type Implementation,
  type RequestId,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { CatalogChange } from '../catalog/CatalogEntries.js';
import { profileKey } from '../catalog/ProfileListings.js';
import { BALANCED, type CallPlacement } from '../forwarding/CallPlacement.js';
import { ClientDisconnectedError, type ClientCallContext } from '../forwarding/ClientCallContext.js';
import type { UpstreamPeer } from '../upstream/UpstreamPeer.js';
import type { ListKind, UpstreamSession } from '../upstream/UpstreamSession.js';
import type { PoolClient } from '../upstream/UpstreamSessionPool.js';
import { ClientCatalogView } from './ClientCatalogView.js';
import { ClientMessageRelay, PASSTHROUGH_RESULT, type ClientChannel } from './ClientMessageRelay.js';
import { ClientSubscriptions } from './ClientSubscriptions.js';
import { installSessionHandlers } from './handlers/installSessionHandlers.js';
import { mergedInstructions } from './mergedInstructions.js';
import { SessionState } from './SessionState.js';
import type { ClientSessionServices } from './ClientSessionServices.js';
import type { HandlerExtra, SessionContext } from './SessionContext.js';

/** What the client said about itself in `initialize`. */
export interface ClientHello {
  readonly protocolVersion: string;
  readonly capabilities: ClientCapabilities;
  readonly clientInfo: Implementation;
}

/** Lifecycle callbacks of one session. */
export interface ClientSessionLifecycle {
  /** The client's initialize request assigned the session id. */
  onInitialized(session: ClientSession): void;
  /** The session is gone (DELETE, idle, router stop). */
  onClosed(session: ClientSession): void;
}

const SERVER_INFO = { name: 'flotilla-router', version: '0.1.0' };

/**
 * One MCP client session on the router's front: an SDK low-level `Server` on its own Streamable HTTP
 * transport (stateful, SSE responses), and everything the client has set up across the mesh: its own
 * upstream session on each node × server it uses (from the session pool, opened on first use with the
 * client's capabilities and client info), its log level, sticky bindings, subscriptions and tasks
 * ({@link SessionState}), and its view of the catalog. Server messages of its upstream sessions reach
 * this client only. Tracks which JSON-RPC requests arrived on which HTTP request, because a client that
 * just drops its connection does not abort the SDK handler's signal.
 */
export class ClientSession implements PoolClient, SessionContext {
  readonly server: Server;
  readonly transport: StreamableHTTPServerTransport;
  readonly state = new SessionState();
  readonly view: ClientCatalogView;
  readonly subscriptions: ClientSubscriptions;
  readonly peer: UpstreamPeer;
  /** Relays server messages that belong to no call to the client's standalone stream. */
  private readonly relay: ClientMessageRelay;
  /** Per in-flight JSON-RPC request: aborted when the HTTP request that carried it is dropped. */
  private readonly connectionSignals = new Map<RequestId, AbortSignal>();
  private openHttpRequests = 0;
  private lastActivity = Date.now();
  private closed = false;
  private pendingListChange: CatalogChange | undefined;

  constructor(
    readonly services: ClientSessionServices,
    hello: ClientHello,
    private readonly lifecycle: ClientSessionLifecycle,
  ) {
    this.server = new Server(SERVER_INFO, {
      capabilities: {
        tools: { listChanged: true },
        resources: { listChanged: true, subscribe: true },
        prompts: { listChanged: true },
        completions: {},
        logging: {},
        tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
      },
      instructions: mergedInstructions(services.catalog),
    });
    this.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: () => lifecycle.onInitialized(this),
    });
    this.transport.onerror = (err) => services.logger.debug({ err, sessionId: this.sessionId }, 'client transport error');
    this.server.onclose = () => this.onClosed();
    this.relay = new ClientMessageRelay(this.sessionChannel(), services.clientRequestTimeoutMs, services.logger);
    const protocolVersion = SUPPORTED_PROTOCOL_VERSIONS.includes(hello.protocolVersion) ? hello.protocolVersion : LATEST_PROTOCOL_VERSION;
    this.peer = { clientInfo: hello.clientInfo, capabilities: hello.capabilities, protocolVersion, sink: this.relay };
    this.view = new ClientCatalogView({
      catalog: services.catalog,
      profiles: services.profiles,
      peer: this.peer,
      profileKey: profileKey(hello.capabilities, protocolVersion),
      ownSession: (server) => this.ownSessions(server)[0],
    });
    this.subscriptions = new ClientSubscriptions(this);
    installSessionHandlers(this);
  }

  /** The client session's id (the router's `Mcp-Session-Id`); empty until initialize assigned it. */
  get id(): string {
    return this.transport.sessionId ?? '';
  }

  get sessionId(): string | undefined {
    return this.transport.sessionId;
  }

  get logger(): Logger {
    return this.services.logger;
  }

  async start(): Promise<void> {
    await this.server.connect(this.transport);
  }

  /** Whether the session saw no HTTP traffic for `idleMs` and holds no open stream. */
  idleFor(idleMs: number, now = Date.now()): boolean {
    return this.openHttpRequests === 0 && now - this.lastActivity > idleMs;
  }

  /**
   * Hands one HTTP request to the session's transport. `requestIds` are the JSON-RPC requests in its
   * (already parsed) body: if the client drops the connection before they are answered, they are
   * cancelled upstream.
   */
  async handle(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown, requestIds: RequestId[] = []): Promise<void> {
    this.lastActivity = Date.now();
    this.openHttpRequests++;
    const gone = new AbortController();
    for (const id of requestIds) this.connectionSignals.set(id, gone.signal);
    res.once('close', () => {
      this.openHttpRequests--;
      this.lastActivity = Date.now();
      if (!res.writableFinished && requestIds.length) {
        this.logger.info({ sessionId: this.sessionId, requestIds }, 'client dropped its connection; cancelling its calls');
        gone.abort(new ClientDisconnectedError());
      }
      for (const id of requestIds) if (this.connectionSignals.get(id) === gone.signal && !gone.signal.aborted) this.connectionSignals.delete(id);
    });
    await this.transport.handleRequest(req, res, parsedBody);
  }

  /** Tells the client which lists changed (on its standalone SSE stream), coalescing what arrives in one tick. */
  notifyListChanged(change: CatalogChange): void {
    if (this.closed || !this.sessionId) return;
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
      const send = (p: Promise<void>): void => {
        p.catch((err: unknown) => this.logger.debug({ err, sessionId: this.sessionId }, 'could not send list_changed'));
      };
      if (c.tools) send(this.server.sendToolListChanged());
      if (c.resources) send(this.server.sendResourceListChanged());
      if (c.prompts) send(this.server.sendPromptListChanged());
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.transport.close().catch(() => {});
    this.onClosed();
  }

  // ---- PoolClient: this client's upstream sessions ----

  async sessionOpened(session: UpstreamSession): Promise<void> {
    const level = this.state.logLevel;
    if (level === undefined || !session.serverCapabilities.logging) return;
    await session.request('logging/setLevel', { level }, { signal: AbortSignal.timeout(10_000), timeoutMs: 5000, duringOpen: true });
  }

  sessionLost(session: UpstreamSession, reason: string): void {
    if (this.closed) return;
    this.logger.info({ sessionId: this.sessionId, nodeId: session.nodeId, server: session.server, reason }, 'an upstream session of this client was lost');
    this.subscriptions.moveFrom(session.nodeId, session.server);
  }

  listChanged(session: UpstreamSession, list: ListKind): void {
    this.view.invalidate(session, list);
    this.notifyListChanged({ tools: list === 'tools', resources: list === 'resources', prompts: list === 'prompts', replicas: false });
  }

  keeps(session: UpstreamSession): boolean {
    return this.state.keeps(session.nodeId, session.server);
  }

  // ---- what the handlers use ----

  /** The client's open upstream sessions to `server`: the sticky node's first, then the most recently used. */
  ownSessions(server: string): UpstreamSession[] {
    if (!this.sessionId) return [];
    const bound = this.state.binding(server).nodeId;
    return this.services.pool
      .ofClient(this.id)
      .filter((s) => s.server === server && s.connected)
      .sort((a, b) => (a.nodeId === bound ? -1 : b.nodeId === bound ? 1 : b.lastUsedAt - a.lastUsedAt));
  }

  /** Every open upstream session of this client. */
  allOwnSessions(): UpstreamSession[] {
    return this.sessionId ? this.services.pool.ofClient(this.id).filter((s) => s.connected) : [];
  }

  /** Where calls of this client to `server` may go: its sticky node when the server asked for affinity, else any replica. */
  placementFor(server: string): CallPlacement {
    return this.services.servers.isSticky(server) ? { kind: 'sticky', binding: this.state.binding(server) } : BALANCED;
  }

  /**
   * Where a request about session state of `server` (a session-scoped resource) goes: as calls go for a
   * sticky server, else the nodes where this client has sessions first.
   */
  statePlacementFor(server: string): CallPlacement {
    if (this.services.servers.isSticky(server)) return this.placementFor(server);
    const nodeIds = this.ownSessions(server).map((s) => s.nodeId);
    return nodeIds.length ? { kind: 'preferred', nodeIds } : BALANCED;
  }

  /** The client side of one forwarded request. */
  callContext(extra: HandlerExtra): ClientCallContext {
    const connection = this.connectionSignals.get(extra.requestId);
    this.connectionSignals.delete(extra.requestId);
    const signal = connection ? AbortSignal.any([extra.signal, connection]) : extra.signal;
    const channel: ClientChannel = {
      sendNotification: (n) => extra.sendNotification(n as ServerNotification),
      sendRequest: (r, options) => extra.sendRequest(r as ServerRequest, PASSTHROUGH_RESULT, options),
      capabilities: () => this.server.getClientCapabilities(),
      logLevel: () => this.state.logLevel,
    };
    return {
      sessionId: this.id,
      requestId: extra.requestId,
      signal,
      meta: extra._meta as Record<string, unknown> | undefined,
      progressToken: extra._meta?.progressToken,
      sendNotification: channel.sendNotification,
      sink: new ClientMessageRelay(channel, this.services.clientRequestTimeoutMs, this.logger, signal),
      upstream: this,
    };
  }

  /** A context for requests the router makes on the client's behalf (moving a subscription): never cancelled, no progress. */
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

  private sessionChannel(): ClientChannel {
    return {
      sendNotification: (n) => this.server.notification(n as ServerNotification),
      sendRequest: (r, options) => this.server.request(r as ServerRequest, PASSTHROUGH_RESULT, options),
      capabilities: () => this.server.getClientCapabilities(),
      logLevel: () => this.state.logLevel,
    };
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.connectionSignals.clear();
    if (this.sessionId) {
      void this.services.pool.closeClient(this.id).catch((err: unknown) => this.logger.debug({ err }, 'error closing upstream sessions'));
    }
    this.lifecycle.onClosed(this);
  }
}
