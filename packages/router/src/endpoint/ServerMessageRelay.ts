import type {
  CreateMessageRequest,
  CreateMessageResult,
  CreateMessageResultWithTools,
  ElicitRequest,
  ElicitResult,
  LoggingMessageNotification,
  ResourceUpdatedNotification,
} from '@modelcontextprotocol/sdk/types.js';

/** Where a server-to-client message came from. */
export interface RelayOrigin {
  readonly nodeId: string;
  readonly server: string;
  /** Calls in flight on the upstream session; used to place a message that carries no call id. */
  inflightCallIds(): string[];
}

/**
 * Delivers what an upstream server sends towards clients: during a call (sampling and elicitation
 * requests, log messages) to the client session that made the call; resource updates to the subscribers.
 * Implemented by the forwarding layer; upstream sessions only know this interface.
 */
export interface ServerMessageRelay {
  relaySampling(request: CreateMessageRequest, origin: RelayOrigin, signal: AbortSignal): Promise<CreateMessageResult | CreateMessageResultWithTools>;
  relayElicitation(request: ElicitRequest, origin: RelayOrigin, signal: AbortSignal): Promise<ElicitResult>;
  relayLog(notification: LoggingMessageNotification, origin: RelayOrigin): void;
  /** A subscribed resource changed (`notifications/resources/updated`); goes to every client subscribed to it. */
  relayResourceUpdated(notification: ResourceUpdatedNotification, origin: RelayOrigin): void;
}
