import type { Progress, ProgressToken } from '@modelcontextprotocol/sdk/types.js';
import type { ReplicaView } from '../balancer/Balancer.js';
import type { ServerMessageSink } from '../upstream/UpstreamPeer.js';
import type { PoolClient } from '../upstream/UpstreamSessionPool.js';

/** Why a replica takes no new calls for a server or tool right now. */
export type Unavailability = 'left' | 'draining' | 'breaker_open' | 'tool_breaker_open' | 'disconnected';

/** One request as the upstream server must see it (upstream names, the attempt's `_meta`). */
export interface UpstreamCall {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

/** How one attempt of a call runs on a replica. */
export interface CallOptions {
  /** Router-assigned call id, also in `params._meta['flotilla/callId']`. */
  readonly callId: string;
  /** Aborted when the client cancels (or the call no longer needs this attempt). */
  readonly signal: AbortSignal;
  /** No response and no progress for this long fails the attempt, ms. */
  readonly timeoutMs: number;
  /** Absolute end (epoch ms) of the client's patience: the attempt is cancelled upstream then, progress or not. */
  readonly deadlineAt?: number;
  /** The progress token in the request's `_meta`. */
  readonly progressToken?: ProgressToken;
  readonly onprogress?: (progress: Progress) => void;
  /** Where the server's messages on this request's stream go (the calling client's request). */
  readonly sink?: ServerMessageSink;
  /** Whose upstream session carries the call; the router's own listing session when absent. */
  readonly client?: PoolClient;
  /** Called when the call leaves the router's per-node queue, with the time it waited there. */
  readonly ondequeued?: (waitMs: number) => void;
}

/** What the forwarder needs of one replica ({@link NodeEndpoint} in the router; fakes in tests). */
export interface ForwardTarget extends ReplicaView {
  /**
   * Why new calls for `server` (and `tool`, `<server>/<tool>`) may not be placed here now; undefined when
   * they may.
   */
  unavailability(server: string, tool?: string): Unavailability | undefined;
  /** Host and port of the node's MCP endpoint, for spans. */
  readonly address?: { readonly host: string; readonly port: number };
  /**
   * Runs one request here and resolves with the server's result, untouched. Rejects with
   * `UpstreamFailure` (node trouble), `JsonRpcError` (the server's own answer) or `CallCancelledError`.
   */
  call(server: string, request: UpstreamCall, options: CallOptions): Promise<Record<string, unknown>>;
  /** p95 of the tool's recent response times here as this router measured them, when known. */
  latencyP95Ms(tool: string): number | undefined;
}
