import { McpError } from '@modelcontextprotocol/sdk/types.js';

/**
 * An error the router answers a client request with, carrying exactly the JSON-RPC `code`, `message` and
 * `data` that go on the wire. The SDK's `McpError` prefixes its message with "MCP error <code>:", which
 * the client's SDK would prefix again; the SDK's protocol layer only reads `code`, `message` and `data`
 * of a thrown error, so this plain class keeps messages readable.
 */
export class JsonRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'JsonRpcError';
  }

  /** Re-throws an error a server sent us, without the SDK's "MCP error <code>:" prefix. */
  static fromMcpError(error: McpError): JsonRpcError {
    const prefix = `MCP error ${error.code}: `;
    const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return new JsonRpcError(error.code, message, error.data);
  }
}
