import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@flotilla/telemetry';
import { hostHeaderProblem } from './hostHeaderCheck.js';
import { sendJson, sendJsonRpcError } from './jsonResponses.js';
import type { McpEndpoint } from './McpEndpoint.js';

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
  logger: Logger;
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
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url, method: req.method }, 'HTTP request failed');
        sendJsonRpcError(res, 500, -32603, `Internal error: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
    // SSE streams of long tool calls must not be cut by Node's request timeout.
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = 65_000;
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
    const url = new URL(req.url ?? '/', 'http://agent.invalid');
    const path = url.pathname;
    if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
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
      return;
    }
    const match = /^\/mcp\/([^/]+)\/?$/.exec(path);
    const endpoints = [...this.options.endpoints()];
    if (!match) {
      const hosted = endpoints.map((e) => e.path);
      sendJson(res, 404, { error: `no route ${path}; MCP servers on this node: ${hosted.join(', ') || 'none'}; health: /healthz, /readyz; metrics: /metrics` });
      return;
    }
    const name = decodeURIComponent(match[1]!);
    const endpoint = endpoints.find((e) => e.server === name);
    if (!endpoint) {
      sendJsonRpcError(res, 404, -32000, `no MCP server "${name}" on this node (hosted: ${endpoints.map((e) => e.server).join(', ')})`);
      return;
    }
    const problem = hostHeaderProblem(req, this.options.allowedHosts);
    if (problem) {
      sendJsonRpcError(res, 403, -32000, `Forbidden: ${problem}`);
      return;
    }
    await endpoint.handle(req, res);
  }
}
