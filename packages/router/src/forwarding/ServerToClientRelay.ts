import { META_CALL_ID, META_DEADLINE } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import {
  CreateMessageResultSchema,
  CreateMessageResultWithToolsSchema,
  ElicitResultSchema,
  ErrorCode,
  LoggingLevelSchema,
  McpError,
  type CreateMessageRequest,
  type CreateMessageResult,
  type CreateMessageResultWithTools,
  type ElicitRequest,
  type ElicitResult,
  type LoggingLevel,
  type LoggingMessageNotification,
  type ResourceUpdatedNotification,
} from '@modelcontextprotocol/sdk/types.js';
import type { RelayOrigin, ServerMessageRelay } from '../endpoint/ServerMessageRelay.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import type { ActiveCall, CallDirectory } from './CallDirectory.js';

const SEVERITY = new Map<LoggingLevel, number>(LoggingLevelSchema.options.map((level, index) => [level, index]));

/** `_meta` keys that only mean something between router and agent. */
const INTERNAL_META_KEYS = [META_CALL_ID, META_DEADLINE, 'progressToken'];

/** Copies params without the router/agent-internal `_meta` keys (dropping `_meta` when nothing is left). */
function withoutInternalMeta<P extends { _meta?: Record<string, unknown> | undefined }>(params: P): P {
  if (!params._meta) return params;
  const meta = { ...params._meta };
  for (const key of INTERNAL_META_KEYS) delete meta[key];
  const { _meta: _dropped, ...rest } = params;
  return (Object.keys(meta).length ? { ...rest, _meta: meta } : rest) as P;
}

/**
 * Delivers server-to-client messages from upstream sessions to the client that made the call they belong
 * to: sampling and elicitation requests (the client's answer goes back upstream) and log messages. The
 * call is found by `_meta['flotilla/callId']`; a message without it is placed on the session's only
 * in-flight call, if there is exactly one.
 */
export class ServerToClientRelay implements ServerMessageRelay {
  constructor(
    private readonly calls: CallDirectory,
    private readonly clientRequestTimeoutMs: number,
    private readonly logger: Logger,
    /** Fans resource updates out to subscribers (set once subscriptions exist). */
    private readonly onResourceUpdated: (uri: string, origin: RelayOrigin) => void = () => {},
  ) {}

  relayResourceUpdated(notification: ResourceUpdatedNotification, origin: RelayOrigin): void {
    this.onResourceUpdated(notification.params.uri, origin);
  }

  async relaySampling(request: CreateMessageRequest, origin: RelayOrigin, signal: AbortSignal): Promise<CreateMessageResult | CreateMessageResultWithTools> {
    const call = this.callFor(request.params._meta, origin, request.method);
    if (!call.client.clientCapabilities()?.sampling) {
      throw new JsonRpcError(ErrorCode.InvalidRequest, `the client that called ${call.target} does not support sampling`);
    }
    const params = withoutInternalMeta(request.params);
    const schema = params.tools || params.toolChoice ? CreateMessageResultWithToolsSchema : CreateMessageResultSchema;
    return this.ask(call, { method: 'sampling/createMessage', params }, schema, signal);
  }

  async relayElicitation(request: ElicitRequest, origin: RelayOrigin, signal: AbortSignal): Promise<ElicitResult> {
    const call = this.callFor(request.params._meta, origin, request.method);
    if (!call.client.clientCapabilities()?.elicitation) {
      throw new JsonRpcError(ErrorCode.InvalidRequest, `the client that called ${call.target} does not support elicitation`);
    }
    return this.ask(call, { method: 'elicitation/create', params: withoutInternalMeta(request.params) }, ElicitResultSchema, signal);
  }

  relayLog(notification: LoggingMessageNotification, origin: RelayOrigin): void {
    const call = this.findCall(notification.params._meta, origin);
    if (!call) {
      this.logger.debug({ nodeId: origin.nodeId, server: origin.server, level: notification.params.level }, 'dropping upstream log message that belongs to no call');
      return;
    }
    const threshold = call.client.logLevel();
    if (threshold && (SEVERITY.get(notification.params.level) ?? 0) < (SEVERITY.get(threshold) ?? 0)) return;
    call.client
      .sendNotification({ method: 'notifications/message', params: withoutInternalMeta(notification.params) })
      .catch((err: unknown) => this.logger.debug({ err, callId: call.callId }, 'could not forward a log message to the client'));
  }

  private async ask<S extends typeof CreateMessageResultSchema | typeof CreateMessageResultWithToolsSchema | typeof ElicitResultSchema>(
    call: ActiveCall,
    request: { method: 'sampling/createMessage'; params: CreateMessageRequest['params'] } | { method: 'elicitation/create'; params: ElicitRequest['params'] },
    schema: S,
    upstreamSignal: AbortSignal,
  ) {
    try {
      return await call.client.sendRequest(request, schema, {
        signal: AbortSignal.any([upstreamSignal, call.client.signal]),
        timeout: this.clientRequestTimeoutMs,
      });
    } catch (err) {
      // The node gets the client's error as the client sent it, without the SDK's message prefix.
      if (err instanceof McpError) throw JsonRpcError.fromMcpError(err);
      throw err;
    }
  }

  private callFor(meta: Record<string, unknown> | undefined, origin: RelayOrigin, method: string): ActiveCall {
    const call = this.findCall(meta, origin);
    if (!call) {
      throw new JsonRpcError(
        ErrorCode.InvalidRequest,
        `${method} from ${origin.server} on node ${origin.nodeId} belongs to no call in flight (set _meta["${META_CALL_ID}"] from the call's request)`,
      );
    }
    return call;
  }

  private findCall(meta: Record<string, unknown> | undefined, origin: RelayOrigin): ActiveCall | undefined {
    const callId = meta?.[META_CALL_ID];
    if (typeof callId === 'string') return this.calls.get(callId);
    const inflight = origin.inflightCallIds();
    return inflight.length === 1 ? this.calls.get(inflight[0]!) : undefined;
  }
}
