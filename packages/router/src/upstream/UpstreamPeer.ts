import type { ClientCapabilities, Implementation } from '@modelcontextprotocol/sdk/types.js';
import type { ServerNotificationMessage, ServerRequestMessage } from './ServerMessage.js';

/** Which upstream session a server message came from. */
export interface UpstreamOrigin {
  readonly nodeId: string;
  readonly server: string;
}

/**
 * Where a server's messages go: for messages on a call's response stream, the client request that call
 * serves; for the rest (the session's standalone stream), the session's peer.
 */
export interface ServerMessageSink {
  /** A notification from the server (progress of a call is handled by the call itself and not passed here). */
  notify(notification: ServerNotificationMessage, from: UpstreamOrigin): void;
  /**
   * A request from the server (sampling, elicitation, roots/list…). Resolves with the result to send back;
   * rejects with a `JsonRpcError` to answer with that error (any other error answers internal error).
   * `signal` aborts when the server cancels its request or the session ends.
   */
  ask(request: ServerRequestMessage, from: UpstreamOrigin, signal: AbortSignal): Promise<Record<string, unknown>>;
}

/**
 * Who an upstream session speaks for: a client session (its own capabilities, client info and protocol
 * version, so the server sees that client), or the router itself (catalog listings).
 */
export interface UpstreamPeer {
  readonly clientInfo: Implementation;
  readonly capabilities: ClientCapabilities;
  readonly protocolVersion: string;
  /** The client identity the front door authenticated, carried to nodes in mesh tokens; absent when open. */
  readonly identity?: string;
  /** Server messages that belong to no request in flight. */
  readonly sink: ServerMessageSink;
}
