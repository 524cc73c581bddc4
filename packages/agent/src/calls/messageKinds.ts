import type { JSONRPCErrorResponse, JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, JSONRPCResultResponse } from '@modelcontextprotocol/sdk/types.js';

/*
 * Kinds of JSON-RPC messages that are valid already: those the SDK transport parsed against its message
 * schema before handing them over, and those the SDK server built. The SDK's own `isJSONRPC*` guards
 * parse each message again with zod, and a failed parse builds a full error object: four of them per
 * call were 4.6 % of the agent's busy time (docs/performance.md). A property test is enough here.
 */

/** A request (has a method and an id). */
export function isRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  return 'method' in message && 'id' in message;
}

/** A notification (a method, no id). */
export function isNotification(message: JSONRPCMessage): message is JSONRPCNotification {
  return 'method' in message && !('id' in message);
}

/** A successful response. */
export function isResultResponse(message: JSONRPCMessage): message is JSONRPCResultResponse {
  return 'result' in message;
}

/** An error response. */
export function isErrorResponse(message: JSONRPCMessage): message is JSONRPCErrorResponse {
  return 'error' in message;
}
