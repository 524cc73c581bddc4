import type { Logger } from '@flotilla/telemetry';
import { ErrorCode, LATEST_PROTOCOL_VERSION, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import type { ServerNotificationMessage, ServerRequestMessage } from '../upstream/ServerMessage.js';
import type { ServerMessageSink, UpstreamOrigin, UpstreamPeer } from '../upstream/UpstreamPeer.js';

/** The router's version, sent as client info on its own sessions. */
export const ROUTER_CLIENT_INFO = { name: 'flotilla-router', version: '0.1.0' };

/**
 * Capabilities the router's listing sessions declare: every client capability the router can relay, so
 * the catalog holds every tool some client may be shown (servers hide tools from clients that lack what
 * those tools need). What one client is shown is fetched with that client's own capabilities.
 */
const LISTING_CAPABILITIES: ClientCapabilities = {
  roots: { listChanged: true },
  sampling: {},
  elicitation: { form: {}, url: {} },
};

/**
 * The router itself as the peer of its listing sessions. No client is behind them: roots are an empty
 * list, and sampling or elicitation requests are refused (servers ask those only during calls, which
 * always travel on the calling client's own session).
 */
export class RouterPeer implements UpstreamPeer, ServerMessageSink {
  readonly clientInfo = ROUTER_CLIENT_INFO;
  readonly capabilities = LISTING_CAPABILITIES;
  readonly protocolVersion = LATEST_PROTOCOL_VERSION;
  readonly sink: ServerMessageSink = this;

  constructor(private readonly logger: Logger) {}

  notify(notification: ServerNotificationMessage, from: UpstreamOrigin): void {
    this.logger.debug({ nodeId: from.nodeId, server: from.server, method: notification.method }, 'notification on a listing session');
  }

  async ask(request: ServerRequestMessage, from: UpstreamOrigin): Promise<Record<string, unknown>> {
    if (request.method === 'roots/list') return { roots: [] };
    throw new JsonRpcError(ErrorCode.InvalidRequest, `${request.method} from ${from.server} on node ${from.nodeId} reached the router's listing session, which has no client behind it`);
  }
}
