import { FlotillaErrorCode, NOT_ACCEPTED_CODES } from '@flotilla/protocol';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { HttpStatusError, NoResponseError } from './McpHttpChannel.js';
import { MalformedServerMessage } from './ServerMessage.js';
import { sanitizeUpstreamText } from './sanitizeUpstreamText.js';

/**
 * Why a call did not come back from a node.
 * - `refused`: the node never started it (connection refused, HTTP-level rejection, busy, draining,
 *   breaker open, node gone before sending): any tool may be retried elsewhere.
 * - `lost`: the node accepted it and then failed (connection dropped, node left, no answer in time):
 *   only read-only or idempotent tools may be retried.
 */
export class UpstreamFailure extends Error {
  constructor(
    readonly kind: 'refused' | 'lost',
    readonly nodeId: string,
    readonly reason: string,
    /** Whether the node's circuit breaker should count it (busy/draining are load, not faults). */
    readonly countsAgainstNode: boolean,
    /** The JSON-RPC error code the node answered with, for `refused` answers (busy, draining). */
    readonly code?: number,
  ) {
    super(`node ${nodeId}: ${reason}`);
    this.name = 'UpstreamFailure';
  }

  /** What happened, in the fixed vocabulary of metrics and spans. */
  get category(): 'busy' | 'draining' | 'breaker_open' | 'refused' | 'timeout' | 'node_lost' {
    if (this.kind === 'refused') {
      if (this.code === FlotillaErrorCode.NodeBusy) return 'busy';
      if (this.code === FlotillaErrorCode.NodeDraining) return 'draining';
      if (this.code === FlotillaErrorCode.BreakerOpen) return 'breaker_open';
      return 'refused';
    }
    return this.timedOut ? 'timeout' : 'node_lost';
  }

  /** Set for a call that got neither an answer nor progress within its timeout. */
  timedOut = false;

  /** Set when the node sent no response at all: the connection failed before any response header. */
  beforeResponse = false;

  /** Set when the node no longer knows the upstream session (HTTP 404): a fresh session may carry the request. */
  sessionGone = false;

  /**
   * Whether the breaker of this tool on this node should count it: a call that got neither an answer nor
   * progress in time is a hung tool, not a dead node (a dead node is caught by its connection, its
   * heartbeats and the liveness probe), so one stuck tool does not take the whole node out of rotation.
   */
  countsAgainstTool = false;
}

/** A node's busy or draining answer: it never started the call. */
export function notAccepted(nodeId: string, code: number, message: string): UpstreamFailure {
  const what = code === FlotillaErrorCode.NodeBusy ? 'busy' : code === FlotillaErrorCode.NodeDraining ? 'draining' : code === FlotillaErrorCode.SessionLimit ? 'at its session limit' : 'refused';
  return new UpstreamFailure('refused', nodeId, `${what}: ${message}`, false, code);
}

/** The client cancelled (or dropped) the call; nothing is answered. */
export class CallCancelledError extends Error {
  constructor(readonly reason: string) {
    super(`call cancelled: ${reason}`);
    this.name = 'CallCancelledError';
  }
}

/** Error codes of the cause chain of a connection error (undici puts the socket error in `cause`). */
function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

/** Socket errors that mean the request never reached the node's MCP server. */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * Turns what went wrong with one HTTP exchange of an upstream session into an {@link UpstreamFailure}
 * (node trouble) or a {@link JsonRpcError} (a server that answers with something that is not MCP).
 * Errors that already are one of those, or a {@link CallCancelledError}, pass unchanged.
 */
export function classifyExchangeError(error: unknown, nodeId: string): Error {
  if (error instanceof UpstreamFailure || error instanceof JsonRpcError || error instanceof CallCancelledError) return error;
  if (error instanceof HttpStatusError) {
    // The node's HTTP layer answered before the MCP server saw the message: nothing ran.
    const code = error.rpcError?.code;
    if (code !== undefined && NOT_ACCEPTED_CODES.has(code)) return notAccepted(nodeId, code, error.rpcError!.message);
    const failure = new UpstreamFailure('refused', nodeId, error.message, error.status >= 500 && code === undefined, code);
    failure.sessionGone = error.status === 404;
    return failure;
  }
  if (error instanceof MalformedServerMessage) return new JsonRpcError(ErrorCode.InternalError, `node ${nodeId} sent an invalid answer: ${error.message}`);
  const codes = causeCodes(error);
  const message = error instanceof Error ? error.message : String(error);
  if (codes.some((c) => CONNECT_FAILURES.has(c))) {
    return new UpstreamFailure('refused', nodeId, `cannot connect (${codes.join(', ')})`, true);
  }
  // The request may have reached the server before the connection broke: lost, unless the caller knows better.
  const failure = new UpstreamFailure('lost', nodeId, `connection to node ${nodeId} lost (${codes.join(', ') || sanitizeUpstreamText(message) || 'no detail'})`, true);
  failure.beforeResponse = error instanceof NoResponseError;
  return failure;
}
