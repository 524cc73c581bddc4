import type { IncomingMessage, ServerResponse } from 'node:http';

/** Writes a JSON body with a status, unless a response is already under way. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Writes a JSON-RPC error response with no id (the request could not be attributed to one). */
export function sendJsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null }, headers);
}

/** Writes a JSON-RPC error response to the request `id`, with `data` when given. */
export function sendJsonRpcErrorTo(
  res: ServerResponse,
  status: number,
  id: string | number | null,
  error: { code: number; message: string; data?: Record<string, unknown> },
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { jsonrpc: '2.0', error, id }, headers);
}

/** Outcome of reading a request body as JSON. */
export type JsonBody = { ok: true; body: unknown } | { ok: false; status: number; message: string };

/** Reads and parses a JSON request body of at most `limitBytes`. */
export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<JsonBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limitBytes) return { ok: false, status: 413, message: `request body larger than ${limitBytes} bytes` };
    chunks.push(buf);
  }
  if (size === 0) return { ok: false, status: 400, message: 'Parse error: empty body; expected a JSON-RPC message' };
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, status: 400, message: `Parse error: body is not valid JSON (${(err as Error).message})` };
  }
}
