import { FlotillaErrorCode } from '@flotilla/protocol';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { UpstreamFailure } from '../upstream/UpstreamFailure.js';

/** JSON-RPC errors that are the caller's fault, not the tool's. */
const CALLER_FAULTS: ReadonlySet<number> = new Set([ErrorCode.ParseError, ErrorCode.InvalidRequest, ErrorCode.MethodNotFound, ErrorCode.InvalidParams]);
const FLOTILLA_CODES: ReadonlySet<number> = new Set(Object.values(FlotillaErrorCode));

/**
 * Whether the node's breaker counts `err`: connection-level trouble only (refused, reset, lost stream,
 * session gone). Tool results with `isError`, the server's JSON-RPC answers, cancellations, and busy or
 * draining answers are not node faults.
 */
export function isNodeFault(err: unknown): boolean {
  return err instanceof UpstreamFailure && err.countsAgainstNode;
}

/**
 * Whether the breaker of one tool on one node counts `err`: the server answered that tool with a JSON-RPC
 * error that is not the caller's fault (invalid params and the like) and not a Flotilla admission or
 * deadline answer, or the tool gave neither an answer nor progress within the call timeout. Tool results
 * with `isError: true` are answers, and a cancellation is the client's choice: neither counts.
 */
export function isToolFault(err: unknown): boolean {
  if (err instanceof JsonRpcError) return !CALLER_FAULTS.has(err.code) && !FLOTILLA_CODES.has(err.code);
  return err instanceof UpstreamFailure && err.countsAgainstTool;
}
