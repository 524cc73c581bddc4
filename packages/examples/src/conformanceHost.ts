/**
 * Hosts an MCP server factory on its own Streamable HTTP endpoint, with no Flotilla agent or router in
 * between. Used to validate the conformance fixture directly (so a failure seen through the router can be
 * told apart from a fixture bug), and a compact reference for what a spec-complete host does: stateful
 * sessions with one server per session, resumable SSE streams (event store + retry hint, SEP-1699), and
 * DNS-rebinding protection for a loopback listener.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createConformanceServer } from './conformance.js';

/** Options of {@link startConformanceHost}. */
export interface ConformanceHostOptions {
  /** TCP port; 0 (default) lets the OS pick. */
  port?: number;
  /** Listen address (default 127.0.0.1: DNS-rebinding protection assumes a loopback listener). */
  host?: string;
  /** Path of the MCP endpoint (default `/mcp`). */
  path?: string;
  /** Builds one server per session; default: the conformance fixture with the suite's exact names. */
  factory?: () => McpServer;
  /** SSE `retry` hint in ms sent with each stream's priming event (default 1000). */
  retryIntervalMs?: number;
}

/** A running host. */
export interface ConformanceHost {
  /** The MCP endpoint URL, e.g. `http://127.0.0.1:39123/mcp`. */
  readonly url: string;
  /** Closes every session and the listener. */
  close(): Promise<void>;
}

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Hostname of a `Host` header value or an `Origin` URL, or undefined when it cannot be parsed. */
function hostnameOf(value: string, isOrigin: boolean): string | undefined {
  try {
    return new URL(isOrigin ? value : `http://${value}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * DNS-rebinding check: a page on evil.example that resolves to 127.0.0.1 still sends its own Host/Origin, so
 * anything but a loopback name in either header is refused.
 */
function isLoopbackRequest(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (!host) return false;
  const hostName = hostnameOf(host, false);
  if (!hostName || !LOOPBACK_HOSTNAMES.has(hostName)) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const originName = hostnameOf(origin, true);
  return originName !== undefined && LOOPBACK_HOSTNAMES.has(originName);
}

/** In-memory event store for one session, so a client can resume a closed SSE stream with Last-Event-ID. */
function memoryEventStore(): EventStore {
  const events: Array<{ id: string; streamId: string; message: JSONRPCMessage }> = [];
  let seq = 0;
  return {
    storeEvent(streamId, message) {
      const id = `${streamId}::${String(++seq).padStart(10, '0')}`;
      events.push({ id, streamId, message });
      // A fixture session is short; the cap only keeps a misbehaving client from growing it forever.
      if (events.length > 10_000) events.shift();
      return Promise.resolve(id);
    },
    getStreamIdForEventId(eventId) {
      return Promise.resolve(events.find((e) => e.id === eventId)?.streamId);
    },
    async replayEventsAfter(lastEventId, { send }) {
      const at = events.findIndex((e) => e.id === lastEventId);
      const streamId = at >= 0 ? events[at]!.streamId : lastEventId.split('::')[0] ?? '';
      for (const e of events.slice(at + 1)) {
        if (e.streamId === streamId) await send(e.id, e.message);
      }
      return streamId;
    },
  };
}

function sendJsonError(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

async function readJsonBody(req: IncomingMessage): Promise<{ ok: true; body: unknown } | { ok: false; status: number; message: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) return { ok: false, status: 413, message: 'request body too large' };
    chunks.push(buf);
  }
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch {
    return { ok: false, status: 400, message: 'Parse error: body is not JSON' };
  }
}

/**
 * Starts an HTTP listener serving `factory()` servers over Streamable HTTP, one per session. Resolves once
 * it listens.
 */
export async function startConformanceHost(options: ConformanceHostOptions = {}): Promise<ConformanceHost> {
  const path = options.path ?? '/mcp';
  const factory = options.factory ?? (() => createConformanceServer({ namePrefix: 'test_', jsonSchemaTool: true }));
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer }>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    if (!isLoopbackRequest(req)) {
      sendJsonError(res, 403, -32000, 'Forbidden: Host/Origin is not a loopback name');
      return;
    }
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;

    if (req.method === 'POST') {
      const parsed = await readJsonBody(req);
      if (!parsed.ok) {
        sendJsonError(res, parsed.status, -32700, parsed.message);
        return;
      }
      if (sessionId !== undefined) {
        const session = sessions.get(sessionId);
        if (!session) {
          sendJsonError(res, 404, -32001, 'Session not found');
          return;
        }
        await session.transport.handleRequest(req, res, parsed.body);
        return;
      }
      if (!isInitializeRequest(parsed.body)) {
        sendJsonError(res, 400, -32000, 'Bad Request: no session id, and not an initialize request');
        return;
      }
      const server = factory();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: memoryEventStore(),
        retryInterval: options.retryIntervalMs ?? 1000,
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server });
        },
      });
      transport.onclose = () => {
        const id = transport.sessionId;
        if (id !== undefined && sessions.delete(id)) void server.close();
      };
      await server.connect(transport);
      await transport.handleRequest(req, res, parsed.body);
      return;
    }

    if (req.method === 'GET' || req.method === 'DELETE') {
      const session = sessionId === undefined ? undefined : sessions.get(sessionId);
      if (!session) {
        sendJsonError(res, sessionId === undefined ? 400 : 404, -32000, 'Invalid or missing session id');
        return;
      }
      await session.transport.handleRequest(req, res);
      return;
    }

    res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      sendJsonError(res, 500, -32603, `Internal error: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const { port } = http.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}${path}`,
    async close() {
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled(all.map(async (s) => { await s.transport.close(); await s.server.close(); }));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
