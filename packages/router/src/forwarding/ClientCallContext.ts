import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type {
  ClientCapabilities,
  LoggingLevel,
  ProgressToken,
  RequestId,
  ServerNotification,
  ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';

/**
 * The client side of one forwarded call: which client session and request it answers, and how to send
 * that client messages tied to the request (they travel on the request's own response stream).
 */
export interface ClientCallContext {
  readonly sessionId: string;
  readonly requestId: RequestId;
  /** Aborted when the client cancels the request or drops its connection. */
  readonly signal: AbortSignal;
  /** `params._meta` of the client's request (progress token, trace context, deadline). */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  readonly progressToken: ProgressToken | undefined;
  sendNotification(notification: ServerNotification): Promise<void>;
  sendRequest<S extends AnySchema>(request: ServerRequest, resultSchema: S, options?: RequestOptions): Promise<SchemaOutput<S>>;
  clientCapabilities(): ClientCapabilities | undefined;
  /** Minimum log level the client asked for with `logging/setLevel`, if any. */
  logLevel(): LoggingLevel | undefined;
}

/** The reason a call's signal carries when the client dropped its connection instead of cancelling. */
export class ClientDisconnectedError extends Error {
  constructor() {
    super('client disconnected');
    this.name = 'ClientDisconnectedError';
  }
}
