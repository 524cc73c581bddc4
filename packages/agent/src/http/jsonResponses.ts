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

/**
 * Outcome of reading a request body as JSON. `close` asks the caller to close the connection after the
 * answer (the rest of the body was not read).
 */
export type JsonBody = { ok: true; body: unknown } | { ok: false; status: number; message: string; close?: boolean };

/**
 * Reads and parses a JSON request body of at most `limitBytes`, which must arrive within `timeoutMs` of the
 * call (a client trickling bytes gets 408, not a handler held forever).
 */
export function readJsonBody(req: IncomingMessage, limitBytes: number, timeoutMs: number): Promise<JsonBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: JsonBody): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError);
      if (!result.ok && result.close) req.pause();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, status: 408, message: `Request Timeout: the request body did not arrive within ${timeoutMs} ms`, close: true }), timeoutMs);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) finish({ ok: false, status: 413, message: `request body larger than ${limitBytes} bytes`, close: true });
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (size === 0) return finish({ ok: false, status: 400, message: 'Parse error: empty body; expected a JSON-RPC message' });
      try {
        finish({ ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
      } catch (err) {
        finish({ ok: false, status: 400, message: `Parse error: body is not valid JSON (${(err as Error).message})` });
      }
    };
    const onError = (err: Error): void => finish({ ok: false, status: 400, message: `request body aborted: ${err.message}`, close: true });
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}
