import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MeshTokenClaims } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { meshAuthInfo } from '../calls/CallCaller.js';
import { hostHeaderProblem } from './hostHeaderCheck.js';
import { sendJson, sendJsonRpcError } from './jsonResponses.js';
import type { McpEndpoint } from './McpEndpoint.js';
import type { MeshGate } from './MeshGate.js';

/** What `/healthz` and `/readyz` report. */
export interface HealthReport {
  /** The process serves at all (false only while stopping). */
  live: boolean;
  /** The node should get new calls: not draining, and every hosted server answers. */
  ready: boolean;
  /** Why the node is not `ok`; empty when all is well. */
  reasons: string[];
  [detail: string]: unknown;
}

/** Options of {@link AgentHttpServer}. */
export interface AgentHttpServerOptions {
  host: string;
  port: number;
  /** Accepted Host/Origin names for MCP requests; empty = any. */
  allowedHosts: ReadonlySet<string>;
  /** The endpoints served now (servers can be added and removed while the agent runs). */
  endpoints: () => Iterable<McpEndpoint>;
  health: () => HealthReport;
  /** The Prometheus exposition served at `/metrics`. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** Checks the mesh credential of every request but health probes; without it the node is open to any caller. */
  meshGate?: MeshGate;
  /** Serve `/metrics` without a mesh credential. */
  openMetrics?: boolean;
  /** Connection and timing limits. */
  limits: HttpLimits;
  logger: Logger;
}

/** Limits of the agent's HTTP server against slow or greedy clients. */
export interface HttpLimits {
  /** A client must send its request headers within this, ms (Node answers 408 and closes otherwise). */
  headersTimeoutMs: number;
  /** A request body must arrive within this, ms; a slower one gets 408 (the JSON-RPC body reader enforces it). */
  bodyTimeoutMs: number;
  /** Most open connections; more are refused at once (each upstream session's stream holds one). */
  maxConnections: number;
  /** An idle keep-alive connection is closed after this, ms. */
  keepAliveTimeoutMs: number;
}

/**
 * The agent's HTTP server: each hosted server at `/mcp/<name>` (Streamable HTTP), plus `/healthz`
 * (liveness), `/readyz` (readiness, 503 with reasons when not ready) and `/metrics` (Prometheus). Anything
 * else gets a clear JSON 404/405.
 */
export class AgentHttpServer {
  private readonly server: Server;
  private boundPort = 0;

  constructor(private readonly options: AgentHttpServerOptions) {
    // Node checks header deadlines on this interval (default 30 s): a tighter deadline needs a tighter check.
    const checkEveryMs = Math.max(250, Math.min(30_000, Math.floor(options.limits.headersTimeoutMs / 2)));
    this.server = createServer({ connectionsCheckingInterval: checkEveryMs }, (req, res) => {
      this.route(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url, method: req.method }, 'HTTP request failed');
        sendJsonRpcError(res, 500, -32603, `Internal error: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
    // SSE streams of long tool calls must not be cut by Node's request timeout; the body's own deadline is
    // enforced where it is read (McpEndpoint), headers by Node.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = options.limits.headersTimeoutMs;
    this.server.keepAliveTimeout = options.limits.keepAliveTimeoutMs;
    this.server.maxConnections = options.limits.maxConnections;
    this.server.on('drop', (data?: { remoteAddress?: string }) => options.logger.warn({ remote: data?.remoteAddress, maxConnections: options.limits.maxConnections }, 'connection refused: the agent holds its maximum of connections'));
  }

  get port(): number {
    return this.boundPort;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    return this.boundPort;
  }

  /** Stops listening and ends every open connection (open SSE streams included). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req.url);
    if (path === undefined) {
      sendJsonRpcError(res, 400, -32600, 'Bad Request: the request path is not a valid URL path (bad percent-encoding)');
      return;
    }
    if (path === '/healthz' || path === '/readyz') return this.serveOps(req, res, path);
    const match = /^\/mcp\/([^/]+)\/?$/.exec(path);
    const name = match ? safeDecode(match[1]!) : undefined;
    if (match && name === undefined) {
      sendJsonRpcError(res, 400, -32600, 'Bad Request: the server name in the path is not valid percent-encoding');
      return;
    }
    const gate = this.options.meshGate;
    if (gate && !(path === '/metrics' && this.options.openMetrics)) {
      const grant = await gate.check(req, name);
      if (!grant.ok) {
        req.resume();
        sendJsonRpcError(res, 401, -32001, `Unauthorized: ${grant.reason}`, { 'www-authenticate': 'Bearer realm="flotilla-mesh"' });
        return;
      }
      // The SDK hands `req.auth` with each message of the request: the call's span and logs name the caller.
      (req as IncomingMessage & { auth?: AuthInfo }).auth = meshAuthInfo(grant.claims, grant.token);
      if (name !== undefined) return this.serveMcp(req, res, name, grant.claims);
    }
    if (path === '/metrics') return this.serveOps(req, res, path);
    if (name === undefined) {
      const hosted = [...this.options.endpoints()].map((e) => e.path);
      sendJson(res, 404, { error: `no route ${path}; MCP servers on this node: ${hosted.join(', ') || 'none'}; health: /healthz, /readyz; metrics: /metrics` });
      return;
    }
    return this.serveMcp(req, res, name, undefined);
  }

  private async serveOps(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `method ${req.method ?? '?'} not allowed on ${path}; use GET` }, { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/metrics') {
      const { contentType, body } = await this.options.metrics();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const report = this.options.health();
    const ok = path === '/healthz' ? report.live : report.ready;
    sendJson(res, ok ? 200 : 503, report);
  }

  private async serveMcp(req: IncomingMessage, res: ServerResponse, name: string, grant: MeshTokenClaims | undefined): Promise<void> {
    const endpoints = [...this.options.endpoints()];
    const endpoint = endpoints.find((e) => e.server === name);
    if (!endpoint) {
      sendJsonRpcError(res, 404, -32000, `no MCP server "${name.slice(0, 64)}" on this node (hosted: ${endpoints.map((e) => e.server).join(', ')})`);
      return;
    }
    const problem = hostHeaderProblem(req, this.options.allowedHosts);
    if (problem) {
      sendJsonRpcError(res, 403, -32000, `Forbidden: ${problem}`);
      return;
    }
    await endpoint.handle(req, res, grant);
  }
}

/** The path of a request target, or undefined when it cannot be parsed. */
function requestPath(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://agent.invalid').pathname;
  } catch {
    return undefined;
  }
}

/** decodeURIComponent that answers undefined for malformed percent-encoding (`%E0`) instead of throwing. */
function safeDecode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}
