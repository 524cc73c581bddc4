import type { Logger } from '@flotilla/telemetry';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { serverUnavailable } from '../mountRefusals.js';
import { requestKey } from '../shared/SharedSession.js';

/**
 * The mounted side of a piped session: one MCP session of its own (a dedicated stdio process, or a
 * session with a remote server).
 */
export interface PipeEnd {
  /** Writes a message; rejects when it cannot be delivered (nothing reached the server). */
  send(message: JSONRPCMessage): Promise<void>;
  /** Receives every message the server sends. */
  onMessage(handler: (message: JSONRPCMessage) => void): void;
  /** Resolves with why, once the server side is gone (process exited, remote session broken). */
  readonly ended: Promise<string>;
  /** Ends the server side (stops the process, ends the remote session). */
  close(): Promise<void>;
}

/** What {@link PipeBridge} needs. */
export interface PipeBridgeDeps {
  readonly nodeId: string;
  readonly server: string;
  readonly logger: Logger;
  /** The agent-side transport of the client's session (an `ObservedTransport`). */
  readonly client: Transport;
  readonly end: PipeEnd;
  /** Longest the server may take to answer the client's `initialize`, ms. */
  readonly initializeTimeoutMs: number;
}

const ProgressTokenMetaSchema = z.looseObject({ _meta: z.looseObject({ progressToken: z.union([z.string(), z.number()]).optional() }).optional() });
const ProgressParamsSchema = z.looseObject({ progressToken: z.union([z.string(), z.number()]) });
const CancelledParamsSchema = z.looseObject({ requestId: z.union([z.string(), z.number()]) });

/**
 * One client session piped, message for message, to a mounted server session of its own: the session's
 * state on the server is that client's alone, so nothing needs rewriting. The bridge only follows the
 * client's requests in flight, to send the server's progress on the stream of the request it belongs to,
 * to answer `initialize` with ServerUnavailable when the server cannot be reached or does not answer in
 * time, and to end the client's session when the server side ends (its calls in flight then fail as lost,
 * and the router retries those whose tools allow it).
 */
export class PipeBridge {
  private readonly requests = new Map<string, { method: string; id: RequestId }>();
  private readonly progress = new Map<string, RequestId>();
  private initializeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: PipeBridgeDeps) {
    deps.end.onMessage((m) => this.fromServer(m));
    void deps.end.ended.then((why) => this.serverGone(why));
  }

  /**
   * Starts the client transport: from now on the client's messages flow to the server. Call it once the
   * server side is connected (some transports deliver messages as soon as a handler is installed).
   */
  start(): Promise<void> {
    const { client } = this.deps;
    client.onmessage = (m) => this.fromClient(m);
    client.onclose = () => void this.close('client session ended');
    client.onerror = () => {};
    return client.start();
  }

  private fromClient(message: JSONRPCMessage): void {
    if (this.closed) return;
    if (isJSONRPCRequest(message)) this.track(message);
    else if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
      const p = CancelledParamsSchema.safeParse(message.params);
      if (p.success) this.untrack(p.data.requestId);
    }
    this.deps.end.send(message).catch((err: unknown) => this.undeliverable(message, err));
  }

  private track(request: JSONRPCRequest): void {
    this.requests.set(requestKey(request.id), { method: request.method, id: request.id });
    const meta = ProgressTokenMetaSchema.safeParse(request.params ?? {});
    const token = meta.success ? meta.data._meta?.progressToken : undefined;
    if (token !== undefined) this.progress.set(String(token), request.id);
    if (request.method === 'initialize') {
      this.initializeTimer = setTimeout(() => this.initializeTimedOut(request.id), this.deps.initializeTimeoutMs);
      this.initializeTimer.unref();
    }
  }

  private untrack(id: RequestId): void {
    const r = this.requests.get(requestKey(id));
    if (!r) return;
    this.requests.delete(requestKey(id));
    for (const [token, rid] of this.progress) if (rid === id) this.progress.delete(token);
    if (r.method === 'initialize') clearTimeout(this.initializeTimer);
  }

  private fromServer(message: JSONRPCMessage): void {
    if (this.closed) return;
    const client = this.deps.client;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      if (message.id !== undefined) this.untrack(message.id);
    } else if (isJSONRPCNotification(message) && message.method === 'notifications/progress') {
      const p = ProgressParamsSchema.safeParse(message.params);
      const related = p.success ? this.progress.get(String(p.data.progressToken)) : undefined;
      if (related !== undefined) {
        client.send(message, { relatedRequestId: related }).catch(() => {});
        return;
      }
    }
    client.send(message).catch(() => {});
  }

  /** A client message never reached the server: a request gets ServerUnavailable (nothing ran), then the session ends. */
  private undeliverable(message: JSONRPCMessage, err: unknown): void {
    if (this.closed) return;
    const why = err instanceof Error ? err.message : String(err);
    this.deps.logger.warn({ err: { message: why } }, 'could not pass a message to the mounted server; ending the session');
    const refused = isJSONRPCRequest(message) ? this.refuse(message.id, why) : Promise.resolve();
    void refused.then(() => this.close(`server unreachable: ${why}`));
  }

  private initializeTimedOut(id: RequestId): void {
    if (this.closed || !this.requests.has(requestKey(id))) return;
    void this.refuse(id, `no answer to initialize within ${this.deps.initializeTimeoutMs} ms`).then(() => this.close('initialize timed out'));
  }

  private async refuse(id: RequestId, why: string): Promise<void> {
    this.untrack(id);
    await this.deps.client.send({ jsonrpc: '2.0', id, error: serverUnavailable(this.deps.nodeId, this.deps.server, why) }).catch(() => {});
  }

  private serverGone(why: string): void {
    if (this.closed) return;
    // An initialize the server never answered ran nothing: say so, so the client can go elsewhere.
    const refused = [...this.requests.values()].filter((r) => r.method === 'initialize').map((r) => this.refuse(r.id, why));
    this.deps.logger.info({ reason: why, inflight: this.requests.size }, 'mounted server session ended; ending the client session');
    void Promise.all(refused).then(() => this.close(why));
  }

  /** Ends both sides: the client's session and the server side. */
  async close(why = 'session closed'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.initializeTimer);
    this.deps.logger.debug({ reason: why }, 'piped session closing');
    await Promise.allSettled([this.deps.client.close(), this.deps.end.close()]);
  }
}
