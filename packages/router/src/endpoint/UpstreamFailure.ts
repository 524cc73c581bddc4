import { FlotillaErrorCode, NOT_ACCEPTED_CODES } from '@flotilla/protocol';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { NoResponseError } from './UpstreamFetch.js';

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

  /**
   * Whether the breaker of this tool on this node should count it: a call that got neither an answer nor
   * progress in time is a hung tool, not a dead node (a dead node is caught by its connection, its
   * heartbeats and the liveness probe), so one stuck tool does not take the whole node out of rotation.
   */
  countsAgainstTool = false;
}

/** The client cancelled (or dropped) the call; nothing is answered. */
export class CallCancelledError extends Error {
  constructor(readonly reason: string) {
    super(`call cancelled: ${reason}`);
    this.name = 'CallCancelledError';
  }
}

/** Error codes of the cause chain of a `fetch failed` error (undici puts the socket error in `cause`). */
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
 * Turns whatever the SDK client threw for an upstream request into an {@link UpstreamFailure} (node
 * trouble), a {@link JsonRpcError} (the server's own answer, passed through to the client) or a
 * {@link CallCancelledError}.
 */
export function classifyUpstreamError(error: unknown, nodeId: string, context: { cancelled: boolean; timeoutMs: number }): Error {
  if (context.cancelled) return new CallCancelledError('cancelled by the client');
  if (error instanceof StreamableHTTPError) {
    // The node's HTTP layer answered before the MCP server saw the message (e.g. 404 unknown session).
    return new UpstreamFailure('refused', nodeId, `HTTP ${error.code ?? '?'}: ${error.message}`, (error.code ?? 0) >= 500);
  }
  if (error instanceof McpError) {
    if (NOT_ACCEPTED_CODES.has(error.code)) {
      const what = error.code === FlotillaErrorCode.NodeBusy ? 'busy' : error.code === FlotillaErrorCode.NodeDraining ? 'draining' : 'refused';
      return new UpstreamFailure('refused', nodeId, `${what}: ${JsonRpcError.fromMcpError(error).message}`, false, error.code);
    }
    if (error.code === ErrorCode.RequestTimeout) {
      const failure = new UpstreamFailure('lost', nodeId, `no response or progress within ${context.timeoutMs} ms`, false);
      failure.timedOut = true;
      failure.countsAgainstTool = true;
      return failure;
    }
    if (error.code === ErrorCode.ConnectionClosed && /connection closed/i.test(error.message)) {
      return new UpstreamFailure('lost', nodeId, 'upstream session closed', true);
    }
    return JsonRpcError.fromMcpError(error);
  }
  const codes = causeCodes(error);
  const message = error instanceof Error ? error.message : String(error);
  if (codes.some((c) => CONNECT_FAILURES.has(c))) {
    return new UpstreamFailure('refused', nodeId, `cannot connect (${codes.join(', ')})`, true);
  }
  const noResponse = error instanceof NoResponseError;
  if (noResponse || (error instanceof TypeError && /fetch failed/i.test(message))) {
    // The request may have reached the server before the connection broke: lost, unless the caller knows better.
    const failure = new UpstreamFailure('lost', nodeId, `connection failed (${codes.join(', ') || message})`, true);
    failure.beforeResponse = noResponse;
    return failure;
  }
  if (error instanceof Error && error.name === 'ZodError') {
    return new JsonRpcError(ErrorCode.InternalError, `node ${nodeId} sent an invalid result: ${message}`);
  }
  return new UpstreamFailure('lost', nodeId, message, true);
}
