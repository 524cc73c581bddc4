import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcErrorObject } from '../../http/SessionBudget.js';

/** `n:1` / `s:abc`: a request id as a map key that keeps numbers and strings apart. */
export function requestKey(id: RequestId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/** What a {@link SharedSession} reports to its multiplexer. */
export interface SharedSessionOwner {
  /** A message from this session's client. */
  fromClient(session: SharedSession, message: JSONRPCMessage): void;
  /** The session ended (client DELETE, idle, agent stop, or the process went away). */
  ended(session: SharedSession): void;
}

/**
 * One client session on a shared stdio process: its agent-side transport, and the ids of its requests in
 * flight on the process (client id → process id), so its answers, progress and cancellations find it
 * and no other session.
 */
export class SharedSession {
  /** Requests of this session in flight on the process: client request key → process request id. */
  readonly inflight = new Map<string, number>();
  private closed = false;

  constructor(
    readonly transport: Transport,
    private readonly owner: SharedSessionOwner,
  ) {
    transport.onmessage = (message) => {
      if (!this.closed) owner.fromClient(this, message);
    };
    transport.onclose = () => this.end();
    transport.onerror = () => {};
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends a message to this session's client; a session that is gone drops it. */
  send(message: JSONRPCMessage, options?: TransportSendOptions): void {
    if (this.closed) return;
    this.transport.send(message, options).catch(() => {
      // The client went away; its session closes on its own.
    });
  }

  /** Answers one of the client's requests with an error. */
  answerError(id: RequestId, error: JsonRpcErrorObject): void {
    this.send({ jsonrpc: '2.0', id, error });
  }

  /** Ends the session (its client gets 404 on its next request). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.transport.close().catch(() => {});
    this.end();
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.ended(this);
  }
}
