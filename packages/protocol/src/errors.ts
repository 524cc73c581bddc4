/**
 * JSON-RPC error codes Flotilla adds in the implementation-defined server-error range (-32000..-32099).
 * Clients can tell retryable conditions from tool failures by these.
 */
export const FlotillaErrorCode = {
  /** The node's queue is full; nothing ran. Safe to retry elsewhere. */
  NodeBusy: -32010,
  /** The node is draining and accepts no new calls. Safe to retry elsewhere. */
  NodeDraining: -32011,
  /** No healthy replica offers the tool right now. */
  NoReplica: -32012,
  /** The call was accepted by a node that then failed; not retried because the tool is not idempotent. */
  NodeFailed: -32013,
  /** The node's circuit breaker is open. */
  BreakerOpen: -32014,
  /** The call's deadline passed. */
  DeadlineExceeded: -32015,
  /**
   * The node holds as many MCP sessions as it allows (all hosted servers together): `initialize` refused
   * with HTTP 503, no session was opened. Safe to open the session on another node, or later here.
   */
  SessionLimit: -32016,
  /**
   * The router replica that ran the call stopped before answering, and the client resumed its stream on
   * another replica. The call may have run; it was not run again because it is not marked read-only or
   * idempotent (`data.retryable` is false).
   */
  ReplicaLost: -32017,
} as const;
export type FlotillaErrorCode = (typeof FlotillaErrorCode)[keyof typeof FlotillaErrorCode];

/** Codes that mean the node never started the call, so any tool may be retried on another replica. */
export const NOT_ACCEPTED_CODES: ReadonlySet<number> = new Set([FlotillaErrorCode.NodeBusy, FlotillaErrorCode.NodeDraining, FlotillaErrorCode.SessionLimit]);
