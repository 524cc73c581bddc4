#!/usr/bin/env node
/**
 * Example remote MCP server `bearer`: a small HTTP server that only answers requests carrying
 * `Authorization: Bearer <token>`, the way hosted MCP services do. Agents mount it by URL (`url`,
 * `headers` with the token taken from the agent's environment), so the tests of remote mounts have a
 * server that refuses anyone without the token.
 *
 *   BEARER_SERVER_TOKEN=s3cret node dist/remote/bearerServer.js [--port 0] [--host 127.0.0.1]
 *
 * Endpoints: `/mcp` (Streamable HTTP, one SDK server per session) and `/sse` + `/messages` (the legacy
 * HTTP+SSE transport). Without the token: HTTP 401 with `WWW-Authenticate: Bearer`. Once listening it
 * prints one JSON line on stdout: `{"msg":"remote ready","url":"http://host:port","pid":...}`.
 *
 * Tools: `whoami` (read-only: `{ instance, pid, transport }`, `instance` random per process) and `add`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const instance = randomUUID();

/** Builds the server of one session; `transport` says which HTTP transport it is reached over. */
export function createBearerServer(transport: 'streamable-http' | 'sse'): McpServer {
  const server = new McpServer({ name: 'bearer', version: '0.1.0' });
  server.registerTool('whoami', { description: 'Which server process answers.', annotations: { readOnlyHint: true, openWorldHint: false } }, async () => {
    const value = { instance, pid: process.pid, transport };
    return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
  });
  server.registerTool(
    'add',
    { description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() }, annotations: { readOnlyHint: true, openWorldHint: false } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
  );
  return server;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : undefined;
}

function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message }, id: null }));
}

/** Serves the example on `host:port` with `token`; resolves with its base URL and a close function. */
export async function startBearerServer(options: { token: string; host?: string; port?: number }): Promise<{ url: string; close: () => Promise<void> }> {
  const streams = new Map<string, StreamableHTTPServerTransport>();
  const legacy = new Map<string, SSEServerTransport>();
  const expected = `Bearer ${options.token}`;
  const http = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) refuse(res, 500, err instanceof Error ? err.message : String(err));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.headers.authorization !== expected) {
      refuse(res, 401, 'Unauthorized: a valid bearer token is required', { 'www-authenticate': 'Bearer realm="bearer-example"' });
      return;
    }
    if (path === '/mcp') return streamable(req, res);
    if (path === '/sse' && req.method === 'GET') {
      const transport = new SSEServerTransport('/messages', res);
      legacy.set(transport.sessionId, transport);
      res.on('close', () => legacy.delete(transport.sessionId));
      await createBearerServer('sse').connect(transport);
      return;
    }
    if (path === '/messages' && req.method === 'POST') {
      const id = new URL(req.url ?? '/', 'http://x').searchParams.get('sessionId') ?? '';
      const transport = legacy.get(id);
      if (!transport) return refuse(res, 404, 'Session not found');
      await transport.handlePostMessage(req, res, await readBody(req));
      return;
    }
    refuse(res, 404, `no route ${path}`);
  }

  async function streamable(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    if (sessionId !== undefined) {
      const existing = streams.get(sessionId);
      if (!existing) return refuse(res, 404, 'Session not found');
      await existing.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) return refuse(res, 400, 'Bad Request: initialize first');
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void streams.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) streams.delete(transport.sessionId);
    };
    await createBearerServer('streamable-http').connect(transport);
    await transport.handleRequest(req, res, body);
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = http.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${address.port}`,
    close: async () => {
      await Promise.allSettled([...streams.values(), ...legacy.values()].map((t) => t.close()));
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
  const token = process.env.BEARER_SERVER_TOKEN;
  if (!token) {
    process.stderr.write('bearer example: set BEARER_SERVER_TOKEN to the token clients must send\n');
    process.exit(2);
  }
  const port = Number(values.port);
  const { url } = await startBearerServer({ token, host: values.host, port: Number.isInteger(port) && port >= 0 ? port : 0 });
  process.stdout.write(`${JSON.stringify({ msg: 'remote ready', url, pid: process.pid })}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
