import type { ProgressToken, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ServerMessageSink } from '../upstream/UpstreamPeer.js';
import type { PoolClient } from '../upstream/UpstreamSessionPool.js';

/**
 * The client side of one forwarded call: which client session and request it answers, where the server's
 * messages during the call go (they travel on the request's own response stream), and whose upstream
 * sessions carry it.
 */
export interface ClientCallContext {
  readonly sessionId: string;
  readonly requestId: RequestId;
  /** Aborted when the client cancels the request or drops its connection. */
  readonly signal: AbortSignal;
  /** `params._meta` of the client's request (progress token, trace context, deadline). */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  readonly progressToken: ProgressToken | undefined;
  /** Sends the client a notification about this request (its progress). */
  sendNotification(notification: { method: string; params: Record<string, unknown> }): Promise<void>;
  /** Where the server's messages on the call's response stream go: this client request. */
  readonly sink: ServerMessageSink;
  /** The client session whose own upstream sessions carry the call. */
  readonly upstream: PoolClient;
  /** Who the client is (the front door's principal), for the call's span. */
  readonly principal?: string;
}

/** The reason a call's signal carries when the client dropped its connection instead of cancelling. */
export class ClientDisconnectedError extends Error {
  constructor() {
    super('client disconnected');
    this.name = 'ClientDisconnectedError';
  }
}
