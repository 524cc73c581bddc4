import type { BreakerState } from '../endpoint/NodeGuard.js';

/** How one attempt on a node ended. */
export type AttemptResult = 'ok' | 'tool_error' | 'error' | 'busy' | 'draining' | 'refused' | 'breaker_open' | 'node_lost' | 'timeout' | 'cancelled';

/** How a client's tool call ended, as the client saw it. */
export type CallOutcome = 'ok' | 'tool_error' | 'error' | 'no_replica' | 'invalid_request' | 'cancelled' | 'deadline_exceeded';

/** Tool name reported for a call naming a tool the catalog does not have (parentheses cannot occur in tool names). */
export const UNKNOWN_TOOL = '(unknown)';

/** One attempt of a call on a node, as it ended. */
export interface AttemptRecord {
  readonly nodeId: string;
  readonly result: AttemptResult;
}

/** What the forwarder knows of a finished call beyond its metric labels (for the dashboard's failed calls). */
export interface CallRecord {
  /** The router's call id (`_meta["flotilla/callId"]`). */
  readonly callId: string;
  /** The call's trace: the router's server span when tracing is on, else the client's `traceparent`. */
  readonly traceId: string | undefined;
  /** Every attempt, in the order they ended. */
  readonly attempts: readonly AttemptRecord[];
  /** What the client was told went wrong: the error's message, or the text of a tool's error result. */
  readonly error: string | undefined;
}

/**
 * Hears what happens to tool calls (metrics, the dashboard). Tool names given are catalog names or `(unknown)`, so they
 * stay a bounded label set.
 */
export interface CallObserver {
  /** An attempt on a node ended. Optional, as are `retry` and `failover`. */
  attempt?(tool: string, nodeId: string, result: AttemptResult): void;
  /** Another attempt after one the node never started. */
  retry?(tool: string, reason: AttemptResult): void;
  /** Another attempt after a node accepted the call and then failed. */
  failover?(tool: string, reason: AttemptResult): void;
  /**
   * The client got its answer. `record` is given for calls the forwarder placed; calls refused before that
   * (unknown tool, invalid arguments) have none.
   */
  finished(tool: string, nodeId: string | undefined, outcome: CallOutcome, seconds: number, record?: CallRecord): void;
  /**
   * A read-only call ran past the tool's p95 on its first replica and a second copy was sent to `nodeId`
   * (hedging, when enabled). Optional.
   */
  hedged?(tool: string, nodeId: string): void;
  /**
   * The breaker of one tool on one node changed state (node-wide breakers are reported through the node
   * endpoints' `onBreakerChange`). `tool` is `<server>/<tool>` with the tool's upstream name. Optional.
   */
  toolBreakerTransition?(nodeId: string, tool: string, to: BreakerState): void;
}
