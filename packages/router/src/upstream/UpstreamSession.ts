import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NOT_ACCEPTED_CODES } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import {
  ErrorCode,
  InitializeResultSchema,
  type Implementation,
  type ProgressToken,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { CallCancelledError, UpstreamFailure, classifyExchangeError, notAccepted } from './UpstreamFailure.js';
import type { ToolSchemaGuard } from './ToolSchemaGuard.js';
import { McpHttpChannel, type UpstreamDispatchers } from './McpHttpChannel.js';
import { PendingRequest, type PendingRequestOptions, type RequestExpiry } from './PendingRequest.js';
import type { MalformedServerMessage, MessageId, ServerMessage, ServerNotificationMessage, ServerRequestMessage } from './ServerMessage.js';
import { StandaloneStream } from './StandaloneStream.js';
import type { ServerMessageSink, UpstreamOrigin, UpstreamPeer } from './UpstreamPeer.js';
import { readProgress } from './readProgress.js';

/** Lists a server can say changed. */
export type ListKind = 'tools' | 'resources' | 'prompts';

const LIST_CHANGED: Readonly<Record<string, ListKind>> = {
  'notifications/tools/list_changed': 'tools',
  'notifications/resources/list_changed': 'resources',
  'notifications/prompts/list_changed': 'prompts',
};

/** What an {@link UpstreamSession} needs. */
export interface UpstreamSessionDeps {
  readonly nodeId: string;
  readonly server: string;
  /** The server's Streamable HTTP endpoint on the node. */
  readonly url: URL;
  readonly dispatchers: UpstreamDispatchers;
  /** Who the session speaks for. */
  readonly peer: UpstreamPeer;
  readonly logger: Logger;
  /**
   * Runs once the session is open, before any other request is sent on it (its own requests pass
   * `duringOpen`); its errors are logged, not thrown.
   */
  afterOpen?(session: UpstreamSession): Promise<void>;
  /** The session stopped working by itself (node gone, session expired there); not called on `close`. */
  onLost?(session: UpstreamSession, reason: string): void;
  /** The server said one of its lists changed. */
  onListChanged?(session: UpstreamSession, list: ListKind): void;
  /** Which replica keeps the standalone stream open; without it, this one does. */
  readonly streams?: StreamPlacement;
}

/**
 * Who keeps a session's standalone stream open. A node allows one per session, and what the server sends
 * on it is for the client's own stream: so it is held by the router replica that holds the client's
 * stream (the others hand it off).
 */
export interface StreamPlacement {
  /** Whether this replica should hold the stream now. */
  holdsHere(): boolean;
  /** Asks the replica that holds the client's stream to take this session's stream; resolves once it did, or none does. */
  handOff(session: UpstreamSession): Promise<void>;
}

/** What a replica needs to use a session another replica opened. */
export interface KnownSession {
  readonly sessionId: string;
  readonly protocolVersion: string;
  readonly capabilities: ServerCapabilities;
}

/** Options of one request. */
export interface UpstreamRequestOptions extends PendingRequestOptions {
  /** Aborted when the caller gives up (client cancel): the server is told with `notifications/cancelled`. */
  readonly signal: AbortSignal;
  /** The progress token in the request's `_meta`, whose progress notifications belong to this request. */
  readonly progressToken?: ProgressToken;
  /** Sent by `afterOpen` while the session finishes opening (other requests wait for that). */
  readonly duringOpen?: boolean;
}

/** Longest an initialize handshake may take, ms. */
const INITIALIZE_TIMEOUT_MS = 15_000;
/** Longest a new session waits for its standalone stream before it takes requests anyway, ms. */
const STREAM_OPEN_WAIT_MS = 2000;
/** How long a ping that decides whether a session still works may take, ms. */
const PROBE_TIMEOUT_MS = 3000;

type SessionState = 'new' | 'opening' | 'open' | 'lost' | 'closed';

/**
 * One MCP session from the router to one server on one node, speaking for one peer: a client session (so
 * the server sees that client's capabilities and info, and what it keeps per session stays that
 * client's), or the router itself for catalog listings. A lean MCP client over the node's shared
 * connection pool: it sends raw JSON-RPC, passes results through unparsed, hands every message the server
 * sends to the right sink (the request whose response stream carried it, else the peer), answers the
 * server's requests with what the sink says, and fails requests promptly when their stream breaks, the
 * node stops answering, or their time runs out.
 */
export class UpstreamSession {
  readonly origin: UpstreamOrigin;
  /** Keeps tools beyond the router's bounds out of this session's listings (see `readTools`). */
  readonly toolSchemas: ToolSchemaGuard | undefined;
  private readonly channel: McpHttpChannel;
  private readonly pending = new Map<MessageId, PendingRequest>();
  private readonly byProgressToken = new Map<ProgressToken, PendingRequest>();
  private readonly serverRequests = new Map<MessageId, AbortController>();
  private stream: StandaloneStream | undefined;
  private state: SessionState = 'new';
  private opening: Promise<void> | undefined;
  /**
   * Ids of this object's requests are `<idPrefix>-<n>`. The session on the node outlives this object: it is
   * adopted again (`adopt`) by the next object for the same client and node instance (after the node left
   * the registry view and came back, or on another router replica), and a node keeps what it knows of
   * request ids per session (it drops the late answer of an id it cancelled). An id that started at 1 again
   * would reuse ids the node has seen there, and the answer to such a request could be dropped: the call
   * would hang on a healthy node. A random prefix per object keeps every id unique in the node's session.
   */
  private readonly idPrefix = randomBytes(6).toString('hex');
  private nextId = 1;
  private capabilities: ServerCapabilities = {};
  private info: Implementation | undefined;
  private serverInstructions: string | undefined;
  /** Epoch ms of the last request sent or answered: idle sessions are closed by their pool. */
  lastUsedAt = Date.now();

  constructor(private readonly deps: UpstreamSessionDeps) {
    this.origin = { nodeId: deps.nodeId, server: deps.server };
    this.toolSchemas = deps.dispatchers.toolSchemas;
    this.channel = new McpHttpChannel(deps.url, deps.dispatchers, deps.peer.identity);
  }

  /** A session another replica opened (its id from the session's shared state): open at once, no handshake. */
  static adopt(deps: UpstreamSessionDeps, known: KnownSession): UpstreamSession {
    const session = new UpstreamSession(deps);
    session.channel.sessionId = known.sessionId;
    session.channel.protocolVersion = known.protocolVersion;
    session.capabilities = known.capabilities;
    session.state = 'open';
    session.opening = Promise.resolve();
    return session;
  }

  /** What another replica needs to use this session; undefined until it is open. */
  get known(): KnownSession | undefined {
    const sessionId = this.channel.sessionId;
    const protocolVersion = this.channel.protocolVersion;
    const usable = this.state === 'open' || this.state === 'opening';
    return usable && sessionId !== undefined && protocolVersion !== undefined ? { sessionId, protocolVersion, capabilities: this.capabilities } : undefined;
  }

  /** Whether this replica holds the session's standalone stream. */
  get holdingStream(): boolean {
    return this.stream !== undefined;
  }

  /** Opens the standalone stream here (or keeps it); resolves once its first attempt got an answer (bounded). */
  async holdStream(): Promise<void> {
    if (this.state !== 'open' && this.state !== 'opening') return;
    if (!this.stream) {
      this.stream = new StandaloneStream(this.channel, {
        message: (m) => this.dispatch(m, undefined),
        malformed: (e) => this.malformed(e),
        alive: () => this.ping(PROBE_TIMEOUT_MS),
        gone: (reason, forgotten) => this.markLost(`connection to node ${this.deps.nodeId} lost (session to ${this.deps.server}: ${reason})`, !forgotten),
        wanted: () => this.stream !== undefined && (this.deps.streams?.holdsHere() ?? true),
      });
      this.stream.start();
    }
    await Promise.race([this.stream.firstAttempt, sleep(STREAM_OPEN_WAIT_MS, undefined, { ref: false })]);
  }

  /** Lets go of the standalone stream (another replica holds the client's stream now). */
  releaseStream(): void {
    this.stream?.stop();
    this.stream = undefined;
  }

  get nodeId(): string {
    return this.deps.nodeId;
  }

  get server(): string {
    return this.deps.server;
  }

  get url(): string {
    return this.deps.url.toString();
  }

  get peer(): UpstreamPeer {
    return this.deps.peer;
  }

  /** The session id the node gave, once open. */
  get sessionId(): string | undefined {
    return this.channel.sessionId;
  }

  get connected(): boolean {
    return this.state === 'open';
  }

  /** Whether the session was opened, or is opening, and has not failed or closed. */
  get usable(): boolean {
    return this.state === 'new' || this.state === 'opening' || this.state === 'open';
  }

  get serverCapabilities(): ServerCapabilities {
    return this.capabilities;
  }

  get serverInfo(): Implementation | undefined {
    return this.info;
  }

  get instructions(): string | undefined {
    return this.serverInstructions;
  }

  /** Requests in flight. */
  get inflightCount(): number {
    return this.pending.size;
  }

  /**
   * Opens the session (initialize, initialized, then the standalone stream); concurrent callers share one
   * handshake. Rejects like a request does ({@link UpstreamFailure} when the node is unreachable or
   * refuses, `JsonRpcError` when the server answers initialize with an error).
   */
  open(): Promise<void> {
    if (this.state === 'lost' || this.state === 'closed') {
      return Promise.reject(new UpstreamFailure('refused', this.nodeId, `session to ${this.server} is ${this.state}`, false));
    }
    this.opening ??= this.initialize();
    return this.opening;
  }

  /**
   * Sends one request and resolves with the server's result, untouched. Rejects with an
   * {@link UpstreamFailure} (node trouble), a `JsonRpcError` (the server's own error answer) or a
   * {@link CallCancelledError} (the caller's signal).
   */
  async request(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions): Promise<Record<string, unknown>> {
    if (!options.duringOpen) await this.open();
    if (this.state !== 'open') throw new UpstreamFailure('refused', this.nodeId, `session to ${this.server} is not open`, false);
    if (options.signal.aborted) throw new CallCancelledError('cancelled by the client');
    return this.exchange(method, params, options);
  }

  /** Sends a notification (cancellations, roots list_changed…); best effort, never rejects. */
  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    if (this.state !== 'open') return;
    try {
      await this.channel.post({ jsonrpc: '2.0', method, ...(params ? { params } : {}) });
    } catch (err) {
      this.deps.logger.debug({ err, nodeId: this.nodeId, server: this.server, method }, 'could not send a notification upstream');
    }
  }

  /** Whether the server answers a ping within `timeoutMs`. A paused node keeps its connections and never answers. */
  async ping(timeoutMs: number): Promise<boolean> {
    if (this.state !== 'open') return false;
    try {
      await this.exchange('ping', undefined, { signal: AbortSignal.timeout(timeoutMs * 2), timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  /** Fails every request in flight as lost (the node left, or stopped answering). */
  failInflight(reason: string): void {
    for (const request of [...this.pending.values()]) {
      request.fail(new UpstreamFailure('lost', this.nodeId, reason, true));
      request.abortExchange();
    }
  }

  /** Closes the session; `terminate` also ends it on the node (DELETE). */
  async close(reason: string, terminate = false): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.releaseStream();
    this.failInflight(reason);
    for (const c of this.serverRequests.values()) c.abort();
    this.serverRequests.clear();
    if (terminate && wasOpen) await this.channel.terminate(1000).catch(() => {});
  }

  private async initialize(): Promise<void> {
    this.state = 'opening';
    const { peer } = this.deps;
    try {
      const raw = await this.exchange(
        'initialize',
        { protocolVersion: peer.protocolVersion, capabilities: peer.capabilities, clientInfo: peer.clientInfo },
        { signal: AbortSignal.timeout(INITIALIZE_TIMEOUT_MS), timeoutMs: INITIALIZE_TIMEOUT_MS },
      );
      const parsed = InitializeResultSchema.safeParse(raw);
      if (!parsed.success) throw new JsonRpcError(ErrorCode.InternalError, `node ${this.nodeId} answered initialize of ${this.server} with an invalid result`);
      this.capabilities = parsed.data.capabilities;
      this.info = parsed.data.serverInfo;
      this.serverInstructions = parsed.data.instructions;
      this.channel.protocolVersion = parsed.data.protocolVersion;
      // The standalone stream opens (here, or on the replica that holds the client's stream) before the
      // server hears `initialized`: what it sends outside requests from then on (fastmcp asks for roots at
      // once) would be lost without it, as a server keeps no backlog.
      if (this.deps.streams?.holdsHere() ?? true) await this.holdStream();
      else await this.deps.streams!.handOff(this);
      await this.channel.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    } catch (err) {
      this.releaseStream();
      if (this.state === 'opening') this.state = 'lost';
      throw err instanceof CallCancelledError ? new UpstreamFailure('refused', this.nodeId, `initialize of ${this.server} timed out`, true) : classifyExchangeError(err, this.nodeId);
    }
    if (this.state !== 'opening') throw new UpstreamFailure('refused', this.nodeId, `session to ${this.server} closed while opening`, false);
    this.state = 'open';
    await this.deps.afterOpen?.(this).catch((err: unknown) => this.deps.logger.warn({ err, nodeId: this.nodeId, server: this.server }, 'could not prepare a new upstream session'));
  }

  private async exchange(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions): Promise<Record<string, unknown>> {
    this.lastUsedAt = Date.now();
    const request = new PendingRequest(`${this.idPrefix}-${this.nextId++}`, options, (r, why) => this.expire(r, why));
    this.pending.set(request.id, request);
    const token = options.progressToken;
    if (token !== undefined) this.byProgressToken.set(token, request);
    const onAbort = (): void => this.cancel(request, new CallCancelledError('cancelled by the client'), 'cancelled by the client');
    options.signal.addEventListener('abort', onAbort, { once: true });
    void this.transmit(request, { jsonrpc: '2.0', id: request.id, method, ...(params ? { params } : {}) });
    try {
      return await request.result;
    } finally {
      options.signal.removeEventListener('abort', onAbort);
      this.pending.delete(request.id);
      if (token !== undefined && this.byProgressToken.get(token) === request) this.byProgressToken.delete(token);
      this.lastUsedAt = Date.now();
    }
  }

  /** Posts the request and reads whatever comes back until it is answered or the response ends. */
  private async transmit(request: PendingRequest, message: unknown): Promise<void> {
    const sink = request.options.sink;
    try {
      const reply = await this.channel.post(message, request.http.signal);
      if (reply.kind === 'accepted') {
        request.fail(new UpstreamFailure('lost', this.nodeId, `node ${this.nodeId} acknowledged a request without answering it`, true));
      } else if (reply.kind === 'messages') {
        for (const m of reply.messages) this.dispatch(m, sink);
      } else {
        request.stream = reply.stream;
        await reply.stream.read((m) => this.dispatch(m, sink), (e) => this.malformed(e));
      }
    } catch (err) {
      const failure = classifyExchangeError(err, this.nodeId);
      if (!request.settled) request.fail(failure);
      if (failure instanceof UpstreamFailure && failure.sessionGone) this.markLost(`node ${this.nodeId} no longer knows the session (HTTP 404)`, false);
      return;
    }
    if (!request.settled) request.fail(new UpstreamFailure('lost', this.nodeId, `node ${this.nodeId} closed the call's stream without answering`, true));
  }

  private dispatch(message: ServerMessage, sink: ServerMessageSink | undefined): void {
    switch (message.kind) {
      case 'response':
        return this.answered(message.id, message.result, message.error);
      case 'notification':
        return this.notification(message, sink);
      case 'request':
        void this.serverRequest(message, sink);
        return;
    }
  }

  private answered(id: MessageId | null, result: Record<string, unknown> | undefined, error: { code: number; message: string; data?: unknown } | undefined): void {
    const request = id === null ? undefined : this.pending.get(id);
    if (!request) {
      this.deps.logger.debug({ nodeId: this.nodeId, server: this.server, id }, 'response to no request in flight');
      return;
    }
    if (!error) return request.resolve(result ?? {});
    if (NOT_ACCEPTED_CODES.has(error.code)) {
      request.fail(notAccepted(this.nodeId, error.code, error.message));
    } else {
      request.fail(new JsonRpcError(error.code, error.message, error.data));
    }
  }

  private notification(message: ServerNotificationMessage, sink: ServerMessageSink | undefined): void {
    if (message.method === 'notifications/progress') {
      const progress = readProgress(message.params);
      const request = progress ? this.byProgressToken.get(progress.token) : undefined;
      if (request && progress) return request.progress(progress.progress);
    } else if (message.method === 'notifications/cancelled') {
      // The server gave up on a request of its own; whoever answers it is told through its signal.
      const id = message.params?.['requestId'];
      if (typeof id === 'string' || typeof id === 'number') this.serverRequests.get(id)?.abort();
      return;
    } else {
      const list = LIST_CHANGED[message.method];
      if (list) this.deps.onListChanged?.(this, list);
    }
    (sink ?? this.deps.peer.sink).notify(message, this.origin);
  }

  private async serverRequest(message: ServerRequestMessage, sink: ServerMessageSink | undefined): Promise<void> {
    const controller = new AbortController();
    this.serverRequests.set(message.id, controller);
    let response: unknown;
    try {
      const result = message.method === 'ping' ? {} : await (sink ?? this.deps.peer.sink).ask(message, this.origin, controller.signal);
      response = { jsonrpc: '2.0', id: message.id, result };
    } catch (err) {
      const error = err instanceof JsonRpcError ? err : new JsonRpcError(ErrorCode.InternalError, err instanceof Error ? err.message : String(err));
      response = { jsonrpc: '2.0', id: message.id, error: { code: error.code, message: error.message, ...(error.data !== undefined ? { data: error.data } : {}) } };
    } finally {
      this.serverRequests.delete(message.id);
    }
    if (this.state !== 'open' || controller.signal.aborted) return;
    await this.channel.post(response).catch((err: unknown) => this.deps.logger.debug({ err, nodeId: this.nodeId, server: this.server }, 'could not answer a server request'));
  }

  /** The caller gave up: the request ends now, and the server is told to stop. */
  private cancel(request: PendingRequest, error: Error, reason: string): void {
    if (request.settled) return;
    request.fail(error);
    request.abortExchange();
    void this.notify('notifications/cancelled', { requestId: request.id, reason });
  }

  private expire(request: PendingRequest, why: RequestExpiry): void {
    const failure =
      why === 'deadline'
        ? new UpstreamFailure('lost', this.nodeId, 'the call deadline passed', false)
        : new UpstreamFailure('lost', this.nodeId, `no response or progress within ${request.options.timeoutMs} ms`, false);
    failure.timedOut = true;
    // A tool that neither answers nor reports progress is hung; a passed deadline is the client's budget.
    failure.countsAgainstTool = why === 'idle';
    this.cancel(request, failure, why === 'deadline' ? 'deadline exceeded' : 'timed out');
  }

  private malformed(error: MalformedServerMessage): void {
    this.deps.logger.warn({ nodeId: this.nodeId, server: this.server, err: error }, 'skipping a malformed message from the server');
  }

  /**
   * The session stopped working. With `failInflight`, requests in flight fail as lost (the node stopped
   * answering); without (the node forgot the session), each ends by itself as its own exchange learns.
   */
  private markLost(reason: string, failInflight: boolean): void {
    if (this.state !== 'open' && this.state !== 'opening') return;
    this.state = 'lost';
    this.releaseStream();
    if (failInflight) this.failInflight(reason);
    this.deps.onLost?.(this, reason);
  }
}
