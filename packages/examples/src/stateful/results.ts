import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** A tool result carrying `value` both as JSON text and as structured content. */
export function jsonResult(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}

/** A tool execution error (`isError: true`) with a message a model can act on. */
export function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/**
 * A JSON-RPC error for a request handler to throw: the SDK answers with this code, message and data.
 * (An SDK `McpError` would put "MCP error <code>: " in front of the message on the wire.)
 */
export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}
