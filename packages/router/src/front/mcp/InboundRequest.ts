import type { ProgressToken, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ResponseStream } from './ResponseStream.js';

/** A message the router sends a client. */
export interface OutgoingMessage {
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

/** How a request's context sends the client a request of the router's own and awaits the answer. */
export interface AskOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** What an {@link InboundRequest} needs of its session. */
export interface InboundRequestSession {
  readonly sessionId: string;
  /** Sends `request` to the client on `stream` and awaits its answer. */
  askOn(stream: ResponseStream, request: OutgoingMessage, options: AskOptions): Promise<Record<string, unknown>>;
}

/**
 * One request from a client, while it runs: its id, `_meta`, a signal that aborts when the client cancels
 * it (or goes away and does not come back), and how to send the client messages that belong to it (they
 * travel on the request's own stream).
 */
export class InboundRequest {
  readonly controller = new AbortController();

  constructor(
    readonly id: RequestId,
    readonly method: string,
    readonly meta: Readonly<Record<string, unknown>> | undefined,
    private readonly stream: ResponseStream,
    private readonly session: InboundRequestSession,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get sessionId(): string {
    return this.session.sessionId;
  }

  /** The client's progress token, if it asked for progress. */
  get progressToken(): ProgressToken | undefined {
    const token = this.meta?.['progressToken'];
    return typeof token === 'string' || typeof token === 'number' ? token : undefined;
  }

  /** Sends the client a notification about this request (progress, a log message). */
  notify(message: OutgoingMessage): void {
    this.stream.send(JSON.stringify({ jsonrpc: '2.0', ...message }));
  }

  /** Sends the client a request that belongs to this one (sampling, elicitation) and awaits its answer. */
  ask(request: OutgoingMessage, options: AskOptions): Promise<Record<string, unknown>> {
    return this.session.askOn(this.stream, request, { ...options, signal: options.signal ? AbortSignal.any([options.signal, this.signal]) : this.signal });
  }
}
