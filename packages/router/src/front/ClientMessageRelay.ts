import { META_CALL_ID, META_DEADLINE } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { ErrorCode, LoggingLevelSchema, type ClientCapabilities, type LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { ROUTER_PROGRESS_TOKEN_PREFIX } from '../forwarding/ForwardedCall.js';
import type { ServerNotificationMessage, ServerRequestMessage } from '../upstream/ServerMessage.js';
import type { ServerMessageSink, UpstreamOrigin } from '../upstream/UpstreamPeer.js';

/** `_meta` keys that only mean something between router and agent. */
const INTERNAL_META_KEYS = [META_CALL_ID, META_DEADLINE];

/** Client capability each server-to-client request needs. */
const REQUIRED_CAPABILITY: Readonly<Record<string, keyof ClientCapabilities>> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

const SEVERITY = new Map<unknown, number>(LoggingLevelSchema.options.map((level, index) => [level, index]));

/** List-changed notifications: the client session hears of them through its sessions' `listChanged` hook and tells its client once. */
const LIST_CHANGED = new Set(['notifications/tools/list_changed', 'notifications/resources/list_changed', 'notifications/prompts/list_changed']);

/** Params without the router/agent-internal `_meta` keys (and, for requests, without a progress token nobody would follow). */
export function clientFacingParams(params: Record<string, unknown> | undefined, dropProgressToken: boolean): Record<string, unknown> | undefined {
  const meta = params?.['_meta'];
  if (!params || typeof meta !== 'object' || meta === null) return params;
  const cleaned: Record<string, unknown> = { ...(meta as Record<string, unknown>) };
  for (const key of INTERNAL_META_KEYS) delete cleaned[key];
  if (dropProgressToken) delete cleaned['progressToken'];
  const { _meta: _dropped, ...rest } = params;
  return Object.keys(cleaned).length ? { ...rest, _meta: cleaned } : rest;
}

/** How a relay reaches its client (the SDK server's per-request `extra`, or the session's server). */
export interface ClientChannel {
  sendNotification(notification: { method: string; params?: Record<string, unknown> }): Promise<void>;
  sendRequest(request: { method: string; params?: Record<string, unknown> }, options: { signal?: AbortSignal; timeout?: number }): Promise<Record<string, unknown>>;
  capabilities(): ClientCapabilities | undefined;
  /** The level the client asked for with `logging/setLevel`, if any. */
  logLevel(): LoggingLevel | undefined;
}

/**
 * Relays what an upstream server sends to one client: notifications as they are (minus internal `_meta`),
 * and the server's requests (sampling, elicitation, roots/list) to the client, whose answer, or error, goes
 * back upstream. One relay per client request (messages on that request's response stream stay tied to
 * it), and one per client session (messages outside any call go on the client's standalone stream).
 */
export class ClientMessageRelay implements ServerMessageSink {
  constructor(
    private readonly channel: ClientChannel,
    private readonly requestTimeoutMs: number,
    private readonly logger: Logger,
    /** Aborted when the client request this relay serves is cancelled (unset for the session's relay). */
    private readonly clientSignal?: AbortSignal,
  ) {}

  notify(notification: ServerNotificationMessage, from: UpstreamOrigin): void {
    if (LIST_CHANGED.has(notification.method)) return;
    if (notification.method === 'notifications/message' && this.belowLevel(notification.params?.['level'])) return;
    if (notification.method === 'notifications/progress') {
      // Progress under a token the router made up belongs to a call that is over.
      const token = notification.params?.['progressToken'];
      if (typeof token === 'string' && token.startsWith(ROUTER_PROGRESS_TOKEN_PREFIX)) return;
    }
    const params = clientFacingParams(notification.params, false);
    this.channel
      .sendNotification({ method: notification.method, ...(params ? { params } : {}) })
      .catch((err: unknown) => this.logger.debug({ err, nodeId: from.nodeId, server: from.server, method: notification.method }, 'could not relay a notification to the client'));
  }

  /**
   * Servers get the client's level and filter their own messages; one that ignores it still cannot send
   * the client messages below the level it asked for.
   */
  private belowLevel(level: unknown): boolean {
    const threshold = this.channel.logLevel();
    return threshold !== undefined && (SEVERITY.get(level) ?? Number.MAX_SAFE_INTEGER) < SEVERITY.get(threshold)!;
  }

  async ask(request: ServerRequestMessage, from: UpstreamOrigin, signal: AbortSignal): Promise<Record<string, unknown>> {
    const needed = REQUIRED_CAPABILITY[request.method];
    if (needed && !this.channel.capabilities()?.[needed]) {
      throw new JsonRpcError(ErrorCode.InvalidRequest, `${request.method} from ${from.server}: the client does not support ${needed}`);
    }
    const params = clientFacingParams(request.params, true);
    // The client's error answer reaches the server as the client sent it (a JsonRpcError).
    return this.channel.sendRequest(
      { method: request.method, ...(params ? { params } : {}) },
      { signal: this.clientSignal ? AbortSignal.any([signal, this.clientSignal]) : signal, timeout: this.requestTimeoutMs },
    );
  }
}
