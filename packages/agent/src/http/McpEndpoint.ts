import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { CallTracker } from '../calls/CallTracker.js';
import { ObservedTransport } from '../calls/ObservedTransport.js';
import type { HostedSession, ServerHost } from '../hosting/ServerHost.js';
import type { MeshTokenClaims } from '@flotilla/protocol';
import { SessionRefusedError } from '../mounts/mountRefusals.js';
import { readJsonBody, sendJson, sendJsonRpcError, sendJsonRpcErrorTo } from './jsonResponses.js';
import { checkJsonRpcBody, requestId } from './messageChecks.js';
import type { JsonRpcErrorObject, SessionBudget } from './SessionBudget.js';

/** Largest JSON-RPC request body accepted, bytes. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

interface Session {
  readonly transport: StreamableHTTPServerTransport;
  readonly observed: ObservedTransport;
  readonly hosted: HostedSession;
  /** HTTP requests of this session still open (a client's GET notification stream counts). */
  openRequests: number;
  lastActiveAt: number;
}

/** What an endpoint tells about its sessions (the agent's metrics count them). */
export interface SessionEvents {
  /** An `initialize` was refused because the node holds its maximum of sessions. */
  refused(server: string): void;
  /** A session was closed for being idle. */
  expired(server: string): void;
}

/** Context of an {@link McpEndpoint}. */
export interface McpEndpointContext {
  nodeId: string;
  tracker: CallTracker;
  logger: Logger;
  /** A session with no open request, no call and no open task for this long is closed, ms. */
  sessionIdleTimeoutMs: number;
  /** The node-wide cap on sessions, shared by every endpoint. */
  budget: SessionBudget;
  events?: SessionEvents;
  /**
   * Why a new session is refused now (a mounted server that is restarting, does not answer, or has no
   * process left): `initialize` then gets HTTP 503 with this error, before anything is opened.
   */
  refusal?: () => JsonRpcErrorObject | undefined;
  /** A request body must arrive within this, ms (408 otherwise). */
  bodyTimeoutMs: number;
}

/**
 * The Streamable HTTP endpoint of one hosted server (`/mcp/<name>`): stateful sessions, each with its own
 * SDK `StreamableHTTPServerTransport` (SSE responses: JSON-response mode leaks a stream-map entry per POST
 * in stateful mode, SDK issue 2559), wrapped in an {@link ObservedTransport} and connected to its own
 * server session.
 */
export class McpEndpoint {
  private readonly sessions = new Map<string, Session>();
  private closing = false;
  private readonly reaper: NodeJS.Timeout;

  constructor(
    readonly server: string,
    private readonly host: ServerHost,
    private readonly ctx: McpEndpointContext,
  ) {
    // Clients that vanish without DELETE (a crashed router) would leave their sessions forever.
    this.reaper = setInterval(() => this.reapIdleSessions(), Math.max(50, Math.min(60_000, Math.floor(ctx.sessionIdleTimeoutMs / 2))));
    this.reaper.unref();
  }

  get path(): string {
    return `/mcp/${this.server}`;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Calls queued or running in this endpoint's sessions. */
  get openCalls(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.observed.openCalls;
    return n;
  }

  /** Resolves once no call is open in this endpoint's sessions, or after `graceMs`; true when none is left. */
  async whenNoCalls(graceMs: number): Promise<boolean> {
    if (this.openCalls === 0) return true;
    const tracker = this.ctx.tracker;
    return new Promise<boolean>((resolve) => {
      const done = (idle: boolean): void => {
        clearTimeout(timer);
        tracker.off('change', check);
        resolve(idle);
      };
      const check = (): void => {
        if (this.openCalls === 0) done(true);
      };
      const timer = setTimeout(() => done(this.openCalls === 0), graceMs);
      tracker.on('change', check);
    });
  }

  /**
   * Ends every open session (their clients get 404 and open new ones), leaving the endpoint open: for a
   * mounted server whose sessions no longer reach a working server.
   */
  async closeSessions(reason: string): Promise<void> {
    const all = [...this.sessions.values()];
    if (all.length === 0) return;
    this.ctx.logger.warn({ server: this.server, sessions: all.length, reason }, 'ending the sessions of this server');
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => s.hosted.close()));
  }

  /** Serves one HTTP request; `grant` is the request's verified mesh token, when the node requires one. */
  async handle(req: IncomingMessage, res: ServerResponse, grant?: MeshTokenClaims): Promise<void> {
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    switch (req.method) {
      case 'POST':
        return this.handlePost(req, res, sessionId, grant);
      case 'GET':
      case 'DELETE': {
        if (sessionId === undefined) {
          sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
          return;
        }
        const session = this.sessions.get(sessionId);
        if (!session) {
          sendJsonRpcError(res, 404, -32001, 'Session not found');
          return;
        }
        this.track(session, res);
        // The newest standalone stream wins (the SDK refuses a second one with 409): a router replica that
        // takes over a client's stream replaces the stream of the replica that held it, which may be gone.
        if (req.method === 'GET' && req.headers['last-event-id'] === undefined) session.transport.closeStandaloneSSEStream();
        await session.transport.handleRequest(req, res);
        return;
      }
      default:
        sendJsonRpcError(res, 405, -32000, `Method ${req.method ?? '?'} not allowed; use POST, GET or DELETE`, { allow: 'GET, POST, DELETE' });
    }
  }

  /** Closes every session (their servers abort running handlers). */
  async closeAll(): Promise<void> {
    this.closing = true;
    clearInterval(this.reaper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => s.hosted.close()));
  }

  private async handlePost(req: IncomingMessage, res: ServerResponse, sessionId: string | undefined, grant: MeshTokenClaims | undefined): Promise<void> {
    const parsed = await readJsonBody(req, MAX_BODY_BYTES, this.ctx.bodyTimeoutMs);
    if (!parsed.ok) {
      if (parsed.status === 408) this.ctx.logger.warn({ server: this.server, timeoutMs: this.ctx.bodyTimeoutMs }, 'request body too slow; answered 408 and closed the connection');
      sendJsonRpcError(res, parsed.status, parsed.status === 408 ? -32000 : -32700, parsed.message, parsed.close ? { connection: 'close' } : {});
      return;
    }
    const body = parsed.body;
    const invalid = checkJsonRpcBody(body, grant);
    if (invalid) {
      sendJson(res, invalid.status, invalid.body);
      return;
    }
    if (sessionId !== undefined) {
      const session = this.sessions.get(sessionId);
      if (!session) {
        sendJsonRpcError(res, 404, -32001, 'Session not found');
        return;
      }
      this.track(session, res);
      this.watchForAbandon(res, body, session.observed);
      await session.transport.handleRequest(req, res, body);
      return;
    }
    if (!isInitializeRequest(body)) {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required unless the request is initialize');
      return;
    }
    if (this.closing) {
      sendJsonRpcError(res, 503, -32000, `server ${this.server} is shutting down`);
      return;
    }
    const refusal = this.ctx.refusal?.();
    if (refusal) {
      this.ctx.logger.debug({ server: this.server, code: refusal.code, reason: refusal.message }, 'session refused');
      sendJsonRpcErrorTo(res, 503, (body as { id?: RequestId }).id ?? null, refusal);
      return;
    }
    const release = this.ctx.budget.take();
    if (!release) {
      this.refuseSession(res, (body as { id?: RequestId }).id ?? null);
      return;
    }
    try {
      await this.openSession(req, res, body, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Answers an `initialize` beyond the node's session cap: HTTP 503, JSON-RPC SessionLimit. */
  private refuseSession(res: ServerResponse, id: RequestId | null): void {
    const refusal = this.ctx.budget.refusal();
    this.ctx.logger.warn({ server: this.server, limit: this.ctx.budget.limit }, 'session refused: the node holds its maximum of MCP sessions');
    this.ctx.events?.refused(this.server);
    sendJsonRpcErrorTo(res, 503, id, refusal);
  }

  /** Opens a session; `release` gives its place in the budget back, once, when it closes or fails to open. */
  private async openSession(req: IncomingMessage, res: ServerResponse, body: unknown, release: () => void): Promise<void> {
    const { logger } = this.ctx;
    let session: Session | undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        if (session) this.sessions.set(id, session);
      },
    });
    const observed = new ObservedTransport(transport, { nodeId: this.ctx.nodeId, server: this.server, tracker: this.ctx.tracker, logger });
    const hosted = this.host.open(observed);
    session = { transport, observed, hosted, openRequests: 0, lastActiveAt: Date.now() };
    void observed.closedSignal.then(() => {
      release();
      const id = transport.sessionId;
      if (id !== undefined && this.sessions.get(id) === session) this.sessions.delete(id);
      void hosted.close().catch((err: unknown) => logger.debug({ err, server: this.server }, 'error closing a server session'));
      logger.debug({ server: this.server, sessionId: id }, 'session closed');
    });
    hosted.ready.catch((err: unknown) => {
      if (err instanceof SessionRefusedError) logger.debug({ server: this.server, reason: err.message }, 'session refused');
      else logger.error({ err, server: this.server }, 'server session failed to connect');
    });
    const connected = await Promise.race([observed.started.then(() => undefined), hosted.ready.then(() => undefined, (err: unknown) => err)]);
    if (connected !== undefined) {
      release();
      if (connected instanceof SessionRefusedError) sendJsonRpcErrorTo(res, 503, (body as { id?: RequestId }).id ?? null, connected.error);
      else sendJsonRpcError(res, 500, -32603, `server ${this.server} could not open a session: ${connected instanceof Error ? connected.message : String(connected)}`);
      await hosted.close().catch(() => {});
      return;
    }
    await transport.handleRequest(req, res, body);
    if (transport.sessionId === undefined) {
      // The transport refused the initialize (e.g. wrong Accept header): the session never existed.
      release();
      await hosted.close().catch(() => {});
      return;
    }
    logger.debug({ server: this.server, sessionId: transport.sessionId }, 'session opened');
  }

  /** Counts an open HTTP request of a session until its response closes. */
  private track(session: Session, res: ServerResponse): void {
    session.openRequests += 1;
    session.lastActiveAt = Date.now();
    res.once('close', () => {
      session.openRequests -= 1;
      session.lastActiveAt = Date.now();
    });
  }

  /**
   * Closes sessions with no open request, call or task for the idle timeout: a task is the session's
   * work, and its end counts as activity, so a client has the whole timeout to fetch the result.
   */
  private reapIdleSessions(): void {
    const now = Date.now();
    const cutoff = now - this.ctx.sessionIdleTimeoutMs;
    for (const [id, s] of this.sessions) {
      s.observed.sweepTasks(now);
      if (s.openRequests > 0 || s.observed.openCalls > 0 || s.observed.openTasks > 0) continue;
      const lastActive = Math.max(s.lastActiveAt, s.observed.lastTaskEndedAt);
      if (lastActive > cutoff) continue;
      this.sessions.delete(id);
      this.ctx.logger.info({ server: this.server, sessionId: id, idleMs: now - lastActive }, 'closing idle session');
      this.ctx.events?.expired(this.server);
      void s.hosted.close().catch(() => {});
    }
  }

  /**
   * A client that drops its HTTP connection does not abort the handler: watch the response and cancel the
   * calls it carried when it closes before they were answered.
   */
  private watchForAbandon(res: ServerResponse, body: unknown, observed: ObservedTransport): void {
    const messages = Array.isArray(body) ? (body as unknown[]) : [body];
    const ids: RequestId[] = [];
    for (const m of messages) {
      const method = (m as { method?: unknown } | null)?.method;
      const id = method === 'tools/call' || method === 'tasks/result' ? requestId(m) : undefined;
      if (id !== undefined) ids.push(id);
    }
    if (ids.length === 0) return;
    res.once('close', () => {
      if (!res.writableFinished) observed.abandon(ids);
    });
  }
}
