import type { Logger } from '@flotilla/telemetry';
import type { CallPlacement } from '../forwarding/CallPlacement.js';
import type { ClientCallContext } from '../forwarding/ClientCallContext.js';
import type { UpstreamSession } from '../upstream/UpstreamSession.js';
import type { ClientCatalogView } from './ClientCatalogView.js';
import type { ClientSessionServices } from './ClientSessionServices.js';
import type { InboundRequest } from './mcp/InboundRequest.js';
import type { MethodTable } from './mcp/MethodTable.js';
import type { SessionState } from './SessionState.js';

/** What a subscription keeper needs of its session. */
export interface SubscriptionHolder {
  subscribe(uri: string, client: ClientCallContext): Promise<Record<string, unknown>>;
  unsubscribe(uri: string, client: ClientCallContext): Promise<Record<string, unknown>>;
}

/**
 * One client session as its request handlers see it (a fastify-style encapsulation: handlers get this
 * context, never the session class): its method table, the shared services, its state and view, and how
 * to place and forward its requests.
 */
export interface SessionContext {
  /** Where handlers register the methods the session answers. */
  readonly methods: MethodTable;
  readonly services: ClientSessionServices;
  readonly state: SessionState;
  readonly view: ClientCatalogView;
  readonly subscriptions: SubscriptionHolder;
  readonly logger: Logger;
  /** The client's open upstream sessions to `server`: the sticky node's first, then the most recently used. */
  ownSessions(server: string): UpstreamSession[];
  /** Every open upstream session of this client. */
  allOwnSessions(): UpstreamSession[];
  /** Where calls of this client to `server` may go. */
  placementFor(server: string): CallPlacement;
  /** Where a request about this client's session state on `server` goes. */
  statePlacementFor(server: string): CallPlacement;
  /** The client side of one forwarded request. */
  callContext(request: InboundRequest): ClientCallContext;
  /** A context for requests the router makes on the client's behalf. */
  backgroundContext(label: string): ClientCallContext;
}
