import type { Logger } from '@flotilla/telemetry';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type InitializeResult,
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCResultResponse,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { HostedSession } from '../../hosting/ServerHost.js';
import { SessionRefusedError, notShared, serverUnavailable } from '../mountRefusals.js';
import { NOT_SHARED_METHODS, sharedInitializeResult } from './sharedCapabilities.js';
import { SharedSession, requestKey } from './SharedSession.js';

/** The shared process as the multiplexer uses it. */
export interface SharedBackend {
  send(message: JSONRPCMessage): Promise<void>;
  readonly initializeResult: InitializeResult | undefined;
  unavailable(): string | undefined;
}

/** What {@link SharedSessionMux} needs. */
export interface SharedSessionMuxDeps {
  readonly nodeId: string;
  readonly server: string;
  readonly logger: Logger;
  readonly backend: SharedBackend;
}

/** A client request in flight on the process. */
interface InFlight {
  readonly session: SharedSession;
  readonly clientId: RequestId;
  /** The progress token the process was given in place of the client's, if the client sent one. */
  readonly processToken: string | undefined;
}

/** Where progress for a token the agent gave the process goes. */
interface ProgressRoute {
  readonly session: SharedSession;
  readonly clientToken: string | number;
  readonly clientRequestId: RequestId;
}

const ProgressTokenMetaSchema = z.looseObject({ _meta: z.looseObject({ progressToken: z.union([z.string(), z.number()]).optional() }).optional() });
const ProgressParamsSchema = z.looseObject({ progressToken: z.union([z.string(), z.number()]) });
const CancelledParamsSchema = z.looseObject({ requestId: z.union([z.string(), z.number()]) });
const LoggingParamsSchema = z.looseObject({ level: z.string(), logger: z.string().optional(), data: z.unknown().optional() });
const LIST_CHANGED = new Set(['notifications/tools/list_changed', 'notifications/resources/list_changed', 'notifications/prompts/list_changed']);
const LOUD_LEVELS = new Set(['warning', 'error', 'critical', 'alert', 'emergency']);

/**
 * Many client sessions over the one MCP session of a shared stdio process. Every client request goes to
 * the process under an id of the agent's (and with a progress token of the agent's), so two clients'
 * ids never collide and each answer, progress notification and cancellation reaches only the session it
 * belongs to. What the process sends outside requests goes where it is harmless: `list_changed` to every
 * session (the lists are the same for all), log messages to the agent's own log (they cannot be told
 * apart per client), nothing else. Requests for per-session state are refused
 * ({@link NOT_SHARED_METHODS}); the process is never asked for roots, sampling or elicitation.
 */
export class SharedSessionMux {
  private readonly sessions = new Set<SharedSession>();
  private readonly inflight = new Map<number, InFlight>();
  private readonly progress = new Map<string, ProgressRoute>();
  private nextId = 1;

  constructor(private readonly deps: SharedSessionMuxDeps) {}

  /** Client sessions attached now. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Requests in flight on the process. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Attaches a client session; its `ready` rejects with a {@link SessionRefusedError} when the process is not ready. */
  attach(transport: Transport): HostedSession {
    const why = this.deps.backend.unavailable();
    if (why !== undefined) {
      const refused = Promise.reject(new SessionRefusedError(serverUnavailable(this.deps.nodeId, this.deps.server, why)));
      return { ready: refused, close: () => transport.close().catch(() => {}) };
    }
    const session = new SharedSession(transport, { fromClient: (s, m) => this.fromClient(s, m), ended: (s) => this.ended(s) });
    this.sessions.add(session);
    return { ready: transport.start(), close: () => session.close() };
  }

  /** The process is gone: every session ends (their clients open new ones, once it runs again). */
  lost(reason: string): void {
    this.inflight.clear();
    this.progress.clear();
    const all = [...this.sessions];
    if (all.length > 0) this.deps.logger.warn({ sessions: all.length, reason }, 'shared stdio process lost; ending the sessions that used it (calls in flight fail, and may be retried elsewhere)');
    for (const s of all) void s.close();
  }

  /** A message the process wrote. */
  receive(message: JSONRPCMessage): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) return this.answered(message);
    if (isJSONRPCRequest(message)) return this.serverRequest(message);
    if (isJSONRPCNotification(message)) return this.serverNotification(message);
  }

  private fromClient(session: SharedSession, message: JSONRPCMessage): void {
    if (isJSONRPCRequest(message)) return this.clientRequest(session, message);
    if (isJSONRPCNotification(message)) return this.clientNotification(session, message);
    // A response to a server request: the process never gets to ask a client anything, so there is none.
  }

  private clientRequest(session: SharedSession, request: JSONRPCRequest): void {
    const { backend, server } = { backend: this.deps.backend, server: this.deps.server };
    if (request.method === 'initialize') {
      const result = backend.initializeResult;
      if (!result) return session.answerError(request.id, serverUnavailable(this.deps.nodeId, server, backend.unavailable() ?? 'not ready'));
      session.send({ jsonrpc: '2.0', id: request.id, result: sharedInitializeResult(result) });
      return;
    }
    const why = NOT_SHARED_METHODS[request.method];
    if (why !== undefined) return session.answerError(request.id, notShared(server, request.method, why));
    if (request.method === 'tools/call' && typeof request.params?.task === 'object' && request.params.task !== null) {
      return session.answerError(request.id, notShared(server, 'a task-augmented tools/call', 'tasks are state of the MCP session'));
    }
    this.forward(session, request);
  }

  /** Sends a client request to the process under an id (and progress token) of the agent's. */
  private forward(session: SharedSession, request: JSONRPCRequest): void {
    const id = this.nextId++;
    const meta = ProgressTokenMetaSchema.safeParse(request.params ?? {});
    const clientToken = meta.success ? meta.data._meta?.progressToken : undefined;
    let params = request.params;
    let processToken: string | undefined;
    if (clientToken !== undefined && meta.success) {
      processToken = `flotilla-${id}`;
      params = { ...request.params, _meta: { ...meta.data._meta, progressToken: processToken } };
      this.progress.set(processToken, { session, clientToken, clientRequestId: request.id });
    }
    this.inflight.set(id, { session, clientId: request.id, processToken });
    session.inflight.set(requestKey(request.id), id);
    this.deps.backend.send({ jsonrpc: '2.0', id, method: request.method, ...(params ? { params } : {}) }).catch((err: unknown) => {
      if (!this.settle(id)) return;
      session.answerError(request.id, serverUnavailable(this.deps.nodeId, this.deps.server, err instanceof Error ? err.message : String(err)));
    });
  }

  private clientNotification(session: SharedSession, notification: JSONRPCNotification): void {
    if (notification.method !== 'notifications/cancelled') return; // initialized, roots/list_changed, progress: nothing to pass on
    const p = CancelledParamsSchema.safeParse(notification.params);
    if (!p.success) return;
    const id = session.inflight.get(requestKey(p.data.requestId));
    if (id === undefined) return;
    this.settle(id);
    this.deps.backend.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { ...notification.params, requestId: id } }).catch(() => {});
  }

  /** Forgets a request in flight; false when it was not (already answered or cancelled). */
  private settle(id: number): boolean {
    const f = this.inflight.get(id);
    if (!f) return false;
    this.inflight.delete(id);
    f.session.inflight.delete(requestKey(f.clientId));
    if (f.processToken !== undefined) this.progress.delete(f.processToken);
    return true;
  }

  private answered(message: JSONRPCResultResponse | JSONRPCErrorResponse): void {
    const f = typeof message.id === 'number' ? this.inflight.get(message.id) : undefined;
    if (!f || typeof message.id !== 'number') {
      this.deps.logger.debug({ id: message.id }, 'shared stdio process answered a request no session waits for (cancelled, or its session ended)');
      return;
    }
    this.settle(message.id);
    f.session.send({ ...message, id: f.clientId });
  }

  private serverRequest(request: JSONRPCRequest): void {
    if (request.method === 'ping') {
      void this.deps.backend.send({ jsonrpc: '2.0', id: request.id, result: {} }).catch(() => {});
      return;
    }
    this.deps.logger.warn({ method: request.method }, 'shared stdio process asked a client something; refused (one client cannot answer for all)');
    void this.deps.backend
      .send({ jsonrpc: '2.0', id: request.id, error: { code: ErrorCode.MethodNotFound, message: `${request.method} is not available: this process is shared by many clients (the agent declared no client capabilities)` } })
      .catch(() => {});
  }

  private serverNotification(n: JSONRPCNotification): void {
    if (n.method === 'notifications/progress') {
      const p = ProgressParamsSchema.safeParse(n.params);
      const route = p.success ? this.progress.get(String(p.data.progressToken)) : undefined;
      if (!route || !p.success) return;
      route.session.send({ ...n, params: { ...p.data, progressToken: route.clientToken } }, { relatedRequestId: route.clientRequestId });
      return;
    }
    if (LIST_CHANGED.has(n.method)) {
      for (const s of this.sessions) s.send(n);
      return;
    }
    if (n.method === 'notifications/message') {
      const p = LoggingParamsSchema.safeParse(n.params);
      const fields = p.success ? { level: p.data.level, logger: p.data.logger, data: p.data.data } : { params: n.params };
      if (p.success && LOUD_LEVELS.has(p.data.level)) this.deps.logger.warn(fields, 'log message from the shared stdio process');
      else this.deps.logger.debug(fields, 'log message from the shared stdio process');
      return;
    }
    this.deps.logger.debug({ method: n.method }, 'notification from the shared stdio process not passed on');
  }

  private ended(session: SharedSession): void {
    this.sessions.delete(session);
    // What the session still had running on the process is of no use to anyone: cancel it there.
    for (const id of [...session.inflight.values()]) {
      this.settle(id);
      this.deps.backend.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'client session ended' } }).catch(() => {});
    }
  }
}
