import type { ServerResponse } from 'node:http';

/**
 * Answers an HTTP request with a status and a JSON-RPC error body (`id: null`), the shape the MCP
 * Streamable HTTP transport uses for errors outside any JSON-RPC request.
 */
export function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body).toString(), ...headers });
  res.end(body);
}

/** Answers with a JSON document. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body).toString(),
    ...headers,
  });
  res.end(body);
}
