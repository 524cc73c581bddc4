/** A client's binding of one server to one node (sticky affinity), kept in its session. */
export interface AffinityBinding {
  /** The node the client's calls to the server go to, if bound. */
  readonly nodeId: string | undefined;
  /** Binds (or moves) the client to `nodeId`; `why` says why it moved, for the logs and the trace. */
  bind(nodeId: string, why: string | undefined): void;
}

/**
 * Where a call may go.
 * - `balanced`: any replica, chosen per call by the balancer (the default).
 * - `sticky`: the server keeps session state and asked for affinity: the client's bound node, moved (and
 *   rebound) only when that node cannot take calls or fails.
 * - `preferred`: these nodes first, in order (where the client's session state may be, e.g. a
 *   session-scoped resource), then any replica.
 * - `pinned`: only this node, because the state the request is about lives there (a task, a
 *   subscription); when it cannot take the request, the request fails.
 */
export type CallPlacement =
  | { readonly kind: 'balanced' }
  | { readonly kind: 'sticky'; readonly binding: AffinityBinding }
  | { readonly kind: 'preferred'; readonly nodeIds: readonly string[] }
  | { readonly kind: 'pinned'; readonly nodeId: string; readonly what: string };

export const BALANCED: CallPlacement = { kind: 'balanced' };
