/**
 * A lean MCP client for benchmarks: plain JSON-RPC over one keep-alive undici pool, as any HTTP client
 * would speak Streamable HTTP. The SDK client costs more CPU per call than the proxies measured, so with
 * it the load generator, not the target, would set the ceiling.
 */
import { Agent, request } from 'undici';

/** The protocol version benchmark sessions negotiate. */
export const BENCH_PROTOCOL = '2025-11-25';

/** One connection pool per benchmark process, shared by every client. */
export const benchPool = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

/** The answer of one JSON-RPC exchange. */
export interface RpcAnswer {
  status: number;
  sessionId: string | undefined;
  text: string;
}

/** Sends one JSON-RPC message (or notification) and reads the whole answer, JSON or SSE. */
export async function rpc(url: string, body: unknown, sessionId?: string, headers: Record<string, string> = {}): Promise<RpcAnswer> {
  const res = await request(url, {
    method: 'POST',
    dispatcher: benchPool,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': BENCH_PROTOCOL,
      ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  const header = res.headers['mcp-session-id'];
  return { status: res.statusCode, sessionId: Array.isArray(header) ? header[0] : header, text };
}

/** One client session against one MCP endpoint. */
export class RawMcpSession {
  private nextId = 1;

  private constructor(
    readonly url: string,
    readonly sessionId: string,
    private readonly headers: Record<string, string>,
  ) {}

  /** Initializes a session (initialize + notifications/initialized). */
  static async open(url: string, headers: Record<string, string> = {}): Promise<RawMcpSession> {
    const init = await rpc(url, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: BENCH_PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '0' } } }, undefined, headers);
    if (init.status !== 200 || !init.sessionId) throw new Error(`initialize at ${url}: HTTP ${init.status} ${init.text.slice(0, 200)}`);
    await rpc(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.sessionId, headers);
    return new RawMcpSession(url, init.sessionId, headers);
  }

  /** Calls a tool; throws unless the answer is a result that is not an error. */
  async call(name: string, args: Record<string, unknown>): Promise<void> {
    const a = await rpc(this.url, { jsonrpc: '2.0', id: this.nextId++, method: 'tools/call', params: { name, arguments: args } }, this.sessionId, this.headers);
    if (a.status !== 200 || !a.text.includes('"result"') || a.text.includes('"isError":true')) throw new Error(`${name} at ${this.url}: HTTP ${a.status} ${a.text.slice(0, 200)}`);
  }

  /** Lists every tool (all pages), returning how many there were. */
  async listTools(): Promise<number> {
    let count = 0;
    let cursor: string | undefined;
    do {
      const a = await rpc(this.url, { jsonrpc: '2.0', id: this.nextId++, method: 'tools/list', params: cursor ? { cursor } : {} }, this.sessionId, this.headers);
      const json = a.text.startsWith('{') ? a.text : (a.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).pop() ?? '');
      const page = (JSON.parse(json) as { result: { tools: unknown[]; nextCursor?: string } }).result;
      count += page.tools.length;
      cursor = page.nextCursor;
    } while (cursor);
    return count;
  }

  /** Ends the session (DELETE). */
  async close(): Promise<void> {
    const res = await request(this.url, { method: 'DELETE', dispatcher: benchPool, headers: { 'mcp-session-id': this.sessionId, 'mcp-protocol-version': BENCH_PROTOCOL, ...this.headers } });
    await res.body.dump();
  }
}
