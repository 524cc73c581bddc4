import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { FlotillaErrorCode } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { ErrorCode, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../../errors/JsonRpcError.js';
import { ClientDisconnectedError } from '../../forwarding/ClientCallContext.js';
import { answerText } from '../../upstream/ResultText.js';
import { CallCancelledError } from '../../upstream/UpstreamFailure.js';
import { sendJsonRpcError } from '../JsonRpcHttpError.js';
import { InboundRequest, type AskOptions, type InboundRequestSession, type OutgoingMessage } from './InboundRequest.js';
import type { MethodTable } from './MethodTable.js';
import { OutboundRequests, type ClientResponse } from './OutboundRequests.js';
import { ResponseStream, parseEventId } from './ResponseStream.js';
import { SseStream } from './SseStream.js';

/** One request a stream carries, as a resume ticket keeps it: whether it may run again, and then its params. */
export interface TicketRequest {
  readonly id: RequestId;
  readonly method: string;
  readonly rerun: boolean;
  readonly params?: Record<string, unknown>;
}

/** What another replica needs to finish a stream whose replica died: whose session, and which requests. */
export interface ResumeTicket {
  readonly sid: string;
  readonly requests: readonly TicketRequest[];
}

/** What a {@link FrontSession} needs. */
export interface FrontSessionDeps {
  /** The client-facing session id (`Mcp-Session-Id`). */
  readonly sessionId: string;
  /** The session's stable id inside it. */
  readonly sid: string;
  readonly protocolVersion: string;
  readonly methods: MethodTable;
  readonly outbound: OutboundRequests;
  readonly logger: Logger;
  /** How long a dropped client connection may take to come back (resume) before its requests are cancelled, ms. */
  readonly reconnectGraceMs: number;
  /** Whether a request may run again on another replica if this one dies while it runs (read-only or idempotent work). */
  mayRerun(method: string, params: Record<string, unknown> | undefined): boolean;
  /** Seals a resume ticket into a stream key other replicas can open (synchronously: once per POST). */
  sealTicket(ticket: ResumeTicket): string;
  /** Opens a sealed ticket; undefined when it is not one of the mesh's. */
  openTicket(sealed: string): Promise<ResumeTicket | undefined>;
  /** A client answer to a request another replica (`replica`) sent the client. */
  forwardResponse(replica: string, response: ClientResponse): void;
  /** A cancellation of a request not running here (another replica may run it). */
  forwardCancel(requestId: RequestId, reason: string | undefined): void;
  /** The client's standalone stream is open here now; the returned function runs when it closes. */
  standaloneOpened?(): () => void;
}

/** Longest a recent POST stream is kept after its last answer, for a client that resumes it late, ms. */
const RECENT_STREAM_MS = 30_000;
/** Priming events (empty, with an id) are understood by clients of this protocol version and later. */
const RESUMABLE_SINCE = '2025-11-25';

type Classified = { requests: Array<{ id: RequestId; method: string; params?: Record<string, unknown> }>; notes: Array<{ method: string; params?: Record<string, unknown> }>; responses: ClientResponse[] };

/**
 * One client session's MCP conversation on this router replica (Streamable HTTP, server role): runs the
 * client's requests through the method table with their answers and everything that belongs to them on
 * the POST's own SSE stream, keeps the standalone GET stream, sends the client requests of its own, and
 * lets a client resume a broken stream (`Last-Event-ID`) — here, from what the stream kept, or on another
 * replica, from the stream's sealed resume ticket (requests that may run again run again; the others are
 * answered with a clear error saying they may have run).
 */
export class FrontSession implements InboundRequestSession {
  private readonly inbound = new Map<string, InboundRequest>();
  /** POST streams by key, while open and for a while after (resumable on this replica). */
  private readonly streams = new Map<string, ResponseStream>();
  private readonly standalone: ResponseStream;
  private closed = false;

  constructor(private readonly deps: FrontSessionDeps) {
    this.standalone = new ResponseStream(`s.${randomUUID()}`, undefined, 'standalone');
  }

  get sessionId(): string {
    return this.deps.sessionId;
  }

  /** Whether the client has its standalone stream open on this replica. */
  get hasStandaloneStream(): boolean {
    return this.standalone.attached;
  }

  /** Requests of the client running here. */
  get running(): number {
    return this.inbound.size;
  }

  /** Whether any request of the client runs here, or a stream is open (the session is not idle). */
  get busy(): boolean {
    return this.inbound.size > 0 || this.standalone.attached || [...this.streams.values()].some((s) => s.attached);
  }

  /** Handles a POST's messages (already checked to be JSON-RPC); answers on `res`. */
  async post(messages: readonly JSONRPCMessage[], res: ServerResponse): Promise<void> {
    const { requests, notes, responses } = classify(messages);
    for (const r of responses) this.acceptResponse(r);
    for (const n of notes) await this.acceptNotification(n.method, n.params);
    if (requests.length === 0) {
      res.writeHead(202).end();
      return;
    }
    const duplicate = requests.find((r, i) => this.inbound.has(String(r.id)) || requests.findIndex((x) => String(x.id) === String(r.id)) !== i);
    if (duplicate) {
      return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, `Invalid Request: request id ${JSON.stringify(duplicate.id)} is already in use in this session`);
    }
    const stream = this.openPostStream(requests, res);
    for (const r of requests) void this.run(r.id, r.method, r.params, stream);
  }

  /**
   * Handles a GET: the standalone stream, or with `Last-Event-ID` the continuation of a broken stream.
   * 204 when there is nothing left to resume (the stream's requests were all answered).
   */
  async get(res: ServerResponse, lastEventId: string | undefined): Promise<void> {
    const headers = { 'mcp-session-id': this.sessionId };
    const parsed = lastEventId === undefined ? undefined : parseEventId(lastEventId);
    if (parsed) {
      if (parsed.key === this.standalone.key) return this.attachStandalone(new SseStream(res, headers), parsed.seq);
      const local = this.streams.get(parsed.key);
      if (local) return local.resume(new SseStream(res, headers), parsed.seq);
      if (parsed.key.startsWith('t.')) {
        const ticket = await this.deps.openTicket(parsed.key.slice(2));
        if (ticket && ticket.sid === this.deps.sid) return this.rerun(parsed.key, ticket, res);
      }
      if (!parsed.key.startsWith('s.')) {
        // A POST stream nobody here can continue: its answers were all sent, or it is not this session's.
        res.writeHead(204, headers).end();
        return;
      }
      // The standalone stream of a replica that is gone: a fresh one here, nothing to replay.
    }
    if (this.standalone.attached) {
      return sendJsonRpcError(res, 409, -32000, 'Conflict: Only one SSE stream is allowed per session');
    }
    this.attachStandalone(new SseStream(res, headers), Number.MAX_SAFE_INTEGER);
  }

  private attachStandalone(sse: SseStream, afterSeq: number): void {
    const wasAttached = this.standalone.attached;
    this.standalone.resume(sse, afterSeq);
    if (wasAttached) return;
    const release = this.deps.standaloneOpened?.();
    if (release) sse.onClose(() => {
      if (!this.standalone.attached) release();
    });
  }

  /** Sends the client a notification on its standalone stream (dropped when it has none open, as the spec allows). */
  notify(message: OutgoingMessage): void {
    this.standalone.send(JSON.stringify({ jsonrpc: '2.0', ...message }));
  }

  /** Sends the client a request on its standalone stream and awaits the answer. */
  ask(request: OutgoingMessage, options: AskOptions): Promise<Record<string, unknown>> {
    if (!this.standalone.attached) {
      return Promise.reject(new JsonRpcError(ErrorCode.InvalidRequest, `cannot send ${request.method}: the client has no open stream for requests outside a call`));
    }
    return this.askOn(this.standalone, request, options);
  }

  async askOn(stream: ResponseStream, request: OutgoingMessage, options: AskOptions): Promise<Record<string, unknown>> {
    const { id, answer } = this.deps.outbound.create(options.timeoutMs, options.signal);
    stream.send(JSON.stringify({ jsonrpc: '2.0', id, ...request }));
    try {
      return await answer;
    } catch (err) {
      if (!(err instanceof JsonRpcError && err.code !== ErrorCode.RequestTimeout)) {
        // Aborted or timed out: the client may stop working on it.
        stream.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: err instanceof Error ? err.message : 'cancelled' } }));
      }
      throw err;
    }
  }

  /** A client answer to a request of the router's: settled here, or sent on to the replica whose id it names. */
  acceptResponse(response: ClientResponse): void {
    if (this.deps.outbound.settle(response)) return;
    const replica = OutboundRequests.replicaOf(response.id);
    if (replica !== undefined && replica !== this.deps.outbound.replicaTag) this.deps.forwardResponse(replica, response);
    else this.deps.logger.debug({ sessionId: this.deps.sid, id: response.id }, 'client answered a request nobody waits for');
  }

  /** Cancels a client request running here; false when none of that id runs here. */
  cancel(requestId: RequestId, reason: unknown): boolean {
    const request = this.inbound.get(String(requestId));
    if (!request) return false;
    request.controller.abort(reason instanceof Error ? reason : new CallCancelledError(typeof reason === 'string' ? reason : 'cancelled by the client'));
    return true;
  }

  /** Ends every stream and request of the session here. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.inbound.values()) r.controller.abort(new CallCancelledError('the session closed'));
    this.deps.outbound.failAll('the session closed');
    for (const s of this.streams.values()) s.end();
    this.standalone.end();
  }

  private async acceptNotification(method: string, params: Record<string, unknown> | undefined): Promise<void> {
    if (method === 'notifications/initialized') return;
    if (method === 'notifications/cancelled') {
      const requestId = params?.['requestId'];
      const reason = typeof params?.['reason'] === 'string' ? (params['reason'] as string) : undefined;
      if ((typeof requestId === 'string' || typeof requestId === 'number') && !this.cancel(requestId, reason ?? 'cancelled by the client')) {
        this.deps.forwardCancel(requestId, reason);
      }
      return;
    }
    try {
      await this.deps.methods.notify(method, params);
    } catch (err) {
      this.deps.logger.warn({ err, sessionId: this.deps.sid, method }, 'a client notification failed');
    }
  }

  private openPostStream(requests: Classified['requests'], res: ServerResponse): ResponseStream {
    const resumable = this.deps.protocolVersion >= RESUMABLE_SINCE;
    const key = resumable ? `t.${this.deps.sealTicket(this.ticketFor(requests))}` : `l.${randomUUID()}`;
    const headers = { 'mcp-session-id': this.sessionId };
    const ids = requests.map((r) => r.id);
    const stream = resumable ? ResponseStream.primed(key, res, headers, ids) : new ResponseStream(key, new SseStream(res, headers), ids);
    this.streams.set(key, stream);
    stream.onDetached(() => this.graceThenCancel(stream, requests.map((r) => r.id)));
    return stream;
  }

  private ticketFor(requests: Classified['requests']): ResumeTicket {
    return {
      sid: this.deps.sid,
      requests: requests.map((r) =>
        this.deps.mayRerun(r.method, r.params) ? { id: r.id, method: r.method, rerun: true, ...(r.params ? { params: r.params } : {}) } : { id: r.id, method: r.method, rerun: false },
      ),
    };
  }

  /** Runs one request and sends its answer on `stream` (none when the client cancelled it, as the spec says). */
  private async run(id: RequestId, method: string, params: Record<string, unknown> | undefined, stream: ResponseStream): Promise<void> {
    const meta = params?.['_meta'];
    const request = new InboundRequest(id, method, typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : undefined, stream, this);
    this.inbound.set(String(id), request);
    let reply: string | undefined;
    try {
      const result = await this.deps.methods.dispatch(method, params, request);
      // A result straight from a server goes out as the server's own text, with the client's id.
      reply = answerText(id, result);
    } catch (err) {
      if (!(err instanceof CallCancelledError) || !request.signal.aborted) reply = JSON.stringify({ jsonrpc: '2.0', id, error: this.errorOf(err, method) });
    } finally {
      this.inbound.delete(String(id));
    }
    stream.answer(id, reply);
    if (stream.complete) this.forgetLater(stream);
  }

  /** Continues, on this replica, a stream whose replica died: requests that may run again do; the others get an error. */
  private rerun(key: string, ticket: ResumeTicket, res: ServerResponse): void {
    const stream = new ResponseStream(key, new SseStream(res, { 'mcp-session-id': this.sessionId }), ticket.requests.map((r) => r.id));
    this.streams.set(key, stream);
    this.deps.logger.info({ sessionId: this.deps.sid, requests: ticket.requests.map((r) => r.method) }, 'a client resumed a stream of another replica; finishing it here');
    for (const r of ticket.requests) {
      if (r.rerun) {
        void this.run(r.id, r.method, r.params, stream);
        continue;
      }
      stream.send(JSON.stringify({ jsonrpc: '2.0', id: r.id, error: replicaLost(r.method) }));
      stream.answered(r.id);
    }
    if (stream.complete) this.forgetLater(stream);
  }

  /** A client that dropped a stream gets a while to resume it; after that its requests there are cancelled. */
  private graceThenCancel(stream: ResponseStream, ids: readonly RequestId[]): void {
    const timer = setTimeout(() => {
      if (stream.attached || stream.complete) return;
      this.deps.logger.info({ sessionId: this.deps.sid, requestIds: ids }, 'client dropped its connection and did not resume; cancelling its calls');
      for (const id of ids) this.inbound.get(String(id))?.controller.abort(new ClientDisconnectedError());
    }, this.deps.reconnectGraceMs);
    timer.unref();
  }

  private forgetLater(stream: ResponseStream): void {
    const timer = setTimeout(() => {
      if (this.streams.get(stream.key) === stream) this.streams.delete(stream.key);
    }, RECENT_STREAM_MS);
    timer.unref();
  }

  private errorOf(err: unknown, method: string): { code: number; message: string; data?: unknown } {
    if (err instanceof JsonRpcError) return { code: err.code, message: err.message, ...(err.data !== undefined ? { data: err.data } : {}) };
    this.deps.logger.error({ err, sessionId: this.deps.sid, method }, 'request failed unexpectedly');
    return { code: ErrorCode.InternalError, message: 'Internal error' };
  }
}

/** What a request that cannot run again gets when its replica died while it ran. */
function replicaLost(method: string): { code: number; message: string; data: unknown } {
  return {
    code: FlotillaErrorCode.ReplicaLost,
    message: `The router replica running ${method} stopped before answering; it may have run. It was not run again because it is not marked read-only or idempotent.`,
    data: { method, retryable: false },
  };
}

function classify(messages: readonly JSONRPCMessage[]): Classified {
  const out: Classified = { requests: [], notes: [], responses: [] };
  for (const m of messages as ReadonlyArray<Record<string, unknown>>) {
    const params = m['params'] as Record<string, unknown> | undefined;
    if (typeof m['method'] === 'string') {
      if (m['id'] !== undefined) out.requests.push({ id: m['id'] as RequestId, method: m['method'], ...(params ? { params } : {}) });
      else out.notes.push({ method: m['method'], ...(params ? { params } : {}) });
    } else if (m['id'] !== undefined) {
      out.responses.push(m as unknown as ClientResponse);
    }
  }
  return out;
}
