import { FlotillaErrorCode } from '@flotilla/protocol';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from './JsonRpcError.js';

/** One failed attempt to place a call on a node, reported to the client when no replica worked. */
export interface FailedAttempt {
  nodeId: string;
  reason: string;
}

/** `tools/call` (or `prompts/get`) named something the catalog does not have. */
export function unknownTool(name: string): JsonRpcError {
  return new JsonRpcError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
}

/** `tools/call` named a tool the router refused to take from its server (see `ToolSchemaGuard`). */
export function refusedTool(name: string, reason: string): JsonRpcError {
  return new JsonRpcError(ErrorCode.InvalidParams, `Tool ${name} is refused by the router: ${reason}`, { tool: name, reason });
}

/** `prompts/get` named a prompt the catalog does not have. */
export function unknownPrompt(name: string): JsonRpcError {
  return new JsonRpcError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
}

/** `resources/read` named a URI no server offers. */
export function unknownResource(uri: string): JsonRpcError {
  return new JsonRpcError(ErrorCode.InvalidParams, `Unknown resource: ${uri}`);
}

/** Arguments did not match the tool's input schema. */
export function invalidArguments(tool: string, problems: string[]): JsonRpcError {
  return new JsonRpcError(ErrorCode.InvalidParams, `Invalid arguments for tool ${tool}: ${problems.join('; ')}`, { problems });
}

/** No replica could take the call: none exists, all are draining or broken, or every attempt was refused. */
export function noReplica(target: string, attempts: FailedAttempt[]): JsonRpcError {
  const detail = attempts.length
    ? `; tried ${attempts.map((a) => `${a.nodeId} (${a.reason})`).join(', ')}`
    : '; no node offering it is available';
  return new JsonRpcError(FlotillaErrorCode.NoReplica, `No healthy replica for ${target}${detail}`, { target, attempts });
}

/** A node accepted a call that is not safe to retry, then failed. */
export function nodeFailed(target: string, nodeId: string, reason: string, attempts: FailedAttempt[]): JsonRpcError {
  return new JsonRpcError(
    FlotillaErrorCode.NodeFailed,
    `Node ${nodeId} failed while running ${target}: ${reason}; not retried because ${target} is not marked read-only or idempotent`,
    { target, nodeId, reason, attempts },
  );
}

/** The client's deadline passed before a node answered. */
export function deadlineExceeded(target: string, nodeId?: string): JsonRpcError {
  return new JsonRpcError(
    FlotillaErrorCode.DeadlineExceeded,
    `Deadline exceeded for ${target}${nodeId ? ` (last tried on node ${nodeId})` : ''}`,
    { target, ...(nodeId ? { nodeId } : {}) },
  );
}

/** A request about state that lives on one node (a task, a subscription) could not reach that node. */
export function stateUnavailable(target: string, nodeId: string, what: string, attempts: FailedAttempt[]): JsonRpcError {
  const detail = attempts.length ? `: ${attempts.map((a) => a.reason).join('; ')}` : ': it is not available (left, draining, or its breaker is open)';
  return new JsonRpcError(FlotillaErrorCode.NoReplica, `${what} lives on node ${nodeId}, which cannot take ${target} now${detail}`, { target, nodeId, attempts });
}

/**
 * The node a client's session is bound to (sticky affinity) is busy. The call is not moved, since the
 * server keeps the client's session state there; nothing ran, so the client may retry.
 */
export function stickyNodeBusy(target: string, nodeId: string, reason: string): JsonRpcError {
  return new JsonRpcError(
    FlotillaErrorCode.NodeBusy,
    `Node ${nodeId} is busy (${reason}); ${target} stays there because its server keeps this session's state on that node (sticky affinity). Nothing ran; retry later.`,
    { target, nodeId },
  );
}
