import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@flotilla/telemetry';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { PROTECTED_RESOURCE_PATH, type FrontDoor } from '../auth/FrontDoor.js';
import type { HttpRoute, RouterMetrics } from '../metrics/RouterMetrics.js';
import { isDashboardAssetPath } from '../ops/dashboard/DashboardAssets.js';
import type { DashboardEndpoints } from '../ops/dashboard/DashboardEndpoints.js';
import type { OpsApi } from '../ops/OpsApi.js';
import type { OpsAccess } from '../auth/OpsAccess.js';
import type { HostOriginPolicy } from './HostOriginPolicy.js';
import { sendJson, sendJsonRpcError } from './JsonRpcHttpError.js';
import type { McpEndpoint } from './McpEndpoint.js';

/** Timeouts and caps of the router's HTTP server (slow clients, connection floods). */
export interface HttpServerLimits {
  /** The whole request (headers and body) must arrive within this, ms; streams the router sends are not limited. */
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly maxConnections: number;
}

/** What the router's {@link FrontHttpServer} serves. */
export interface FrontHttpServerDeps {
  readonly mcp: McpEndpoint;
  readonly ops: OpsApi;
  /** The Host/Origin policy (known once the port is bound). */
  readonly hostPolicy: () => HostOriginPolicy;
  readonly logger: Logger;
  readonly metrics?: RouterMetrics;
  readonly dashboard?: DashboardEndpoints;
  /** Authenticates `/mcp` requests and serves the protected resource metadata; `/mcp` is open without it. */
  readonly frontDoor?: FrontDoor;
  /** Who may use `/api/v1/*` and the dashboard's data; open without it. */
  readonly opsAccess?: OpsAccess;
  readonly limits?: HttpServerLimits;
}

/** Paths the 404 answer lists. */
const ENDPOINTS = ['/mcp', '/healthz', '/readyz', '/metrics', '/api/v1/nodes', '/api/v1/tools', '/api/v1/replicas', '/api/v1/dashboard', '/dashboard'];

/**
 * The router's HTTP server: `/mcp` (MCP Streamable HTTP) and the operations endpoints. Host and Origin
 * are checked on `/mcp`, `/api` and `/dashboard` (a page another site could otherwise read through DNS
 * rebinding); probes (`/healthz`, `/readyz`) and `/metrics` answer any host, as orchestrators and
 * Prometheus reach pods by IP (and they are read-only). When the front door authenticates, `/api/v1/*`
 * and the dashboard's live stream need a credential with the ops permission ({@link OpsAccess}); the
 * dashboard page and its two static files stay open, so the page can ask for one.
 */
export class FrontHttpServer {
  private readonly http: HttpServer;
  private readonly mcp: McpEndpoint;
  private readonly ops: OpsApi;
  private readonly logger: Logger;
  private readonly metrics: RouterMetrics | undefined;
  private readonly dashboard: DashboardEndpoints | undefined;
  private readonly frontDoor: FrontDoor | undefined;

  constructor(private readonly deps: FrontHttpServerDeps) {
    ({ mcp: this.mcp, ops: this.ops, logger: this.logger, metrics: this.metrics, dashboard: this.dashboard, frontDoor: this.frontDoor } = deps);
    const limits = deps.limits;
    // How often Node checks for requests past their timeouts (it checks only every 30 s by default).
    const checking = limits ? { connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))) } : {};
    this.http = createServer(checking, (req, res) => {
      if (this.metrics) {
        const route = routeOf(req.url);
        res.once('close', () => this.metrics!.httpRequest(route, res.statusCode));
      }
      this.route(req, res).catch((err: unknown) => {
        this.logger.error({ err, url: req.url, method: req.method }, 'request handling failed');
        if (!res.headersSent) sendJsonRpcError(res, 500, ErrorCode.InternalError, 'Internal error');
        else res.destroy();
      });
    });
    // Node's request timeout covers receiving the request only (headers and body), never a response
    // stream, so SSE streams stay open as long as they like while a slow body is cut with 408.
    this.http.requestTimeout = limits?.requestTimeoutMs ?? 0;
    if (limits) {
      this.http.headersTimeout = limits.headersTimeoutMs;
      this.http.maxConnections = limits.maxConnections;
    }
    this.http.keepAliveTimeout = 65_000;
  }

  /** Binds; resolves with the port actually bound. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve((this.http.address() as AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const guarded = path === '/mcp' || path.startsWith('/api/') || path === '/dashboard' || path.startsWith('/dashboard/');
    if (guarded) {
      const verdict = this.deps.hostPolicy().check(req);
      if (!verdict.ok) {
        this.logger.warn({ path, host: req.headers.host, origin: req.headers.origin }, 'refused request: DNS-rebinding protection');
        req.resume();
        return sendJsonRpcError(res, 403, ErrorCode.InvalidRequest, `Forbidden: ${verdict.reason}`);
      }
    }
    const readOnly = (handler: () => void): void => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        req.resume();
        return sendJson(res, 405, { error: `Method not allowed: ${req.method ?? ''}; use GET` }, { allow: 'GET, HEAD' });
      }
      handler();
    };
    if (path === '/mcp') {
      if (!this.frontDoor) return this.mcp.handle(req, res);
      const admission = await this.frontDoor.admit(req);
      if (!admission.ok) {
        req.resume();
        return sendJsonRpcError(res, admission.status, ErrorCode.InvalidRequest, admission.message, admission.headers);
      }
      return this.mcp.handle(req, res, admission.caller);
    }
    if (this.frontDoor?.enforcing && (path === PROTECTED_RESOURCE_PATH || path === `${PROTECTED_RESOURCE_PATH}/mcp`)) {
      const frontDoor = this.frontDoor;
      return readOnly(() => frontDoor.serveMetadata(req, res));
    }
    const opsAccess = this.deps.opsAccess;
    if (opsAccess?.enforcing) {
      if (path === '/dashboard/session') return opsAccess.session(req, res);
      if (path.startsWith('/api/') || path === '/dashboard/events') {
        const verdict = await opsAccess.check(req);
        if (!verdict.ok) {
          req.resume();
          return opsAccess.refuse(res, verdict);
        }
      }
    }
    switch (path) {
      case '/metrics':
        return readOnly(() => void this.serveMetrics(res));
      case '/healthz':
        return readOnly(() => this.ops.healthz(res));
      case '/readyz':
        return readOnly(() => this.ops.readyz(res));
      case '/api/v1/nodes':
        return readOnly(() => this.ops.nodes(res));
      case '/api/v1/tools':
        return readOnly(() => this.ops.tools(res));
      case '/api/v1/replicas':
        return readOnly(() => this.ops.replicaList(res));
      default:
        break;
    }
    const dashboard = this.dashboard;
    if (dashboard) {
      if (path === '/api/v1/dashboard') return readOnly(() => void this.serveDashboardSnapshot(dashboard, res));
      if (path === '/dashboard/events') return readOnly(() => dashboard.events(req, res));
      // The page links its files relative to `/dashboard` (so it also works under a proxy's path prefix).
      if (path === '/dashboard/') return readOnly(() => void res.writeHead(308, { location: '../dashboard' }).end());
      if (isDashboardAssetPath(path)) return readOnly(() => dashboard.asset(path, req, res));
    }
    req.resume();
    return sendJson(res, 404, { error: `Not found: ${path}`, endpoints: ENDPOINTS });
  }

  private async serveDashboardSnapshot(dashboard: DashboardEndpoints, res: ServerResponse): Promise<void> {
    try {
      await dashboard.snapshot(res);
    } catch (err) {
      this.logger.error({ err }, 'cannot build the dashboard snapshot');
      if (!res.headersSent) sendJson(res, 500, { error: 'cannot build the dashboard snapshot' });
    }
  }

  private async serveMetrics(res: ServerResponse): Promise<void> {
    if (!this.metrics) return sendJson(res, 404, { error: 'metrics are off' });
    try {
      const { contentType, body } = await this.metrics.exposition();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(body);
    } catch (err) {
      this.logger.error({ err }, 'cannot render metrics');
      sendJson(res, 500, { error: 'cannot render metrics' });
    }
  }
}

function routeOf(url: string | undefined): HttpRoute {
  const path = (url ?? '/').split('?')[0]!;
  if (path === '/mcp' || path === '/healthz' || path === '/readyz' || path === '/metrics') return path;
  if (path === '/api/v1' || path.startsWith('/api/v1/')) return '/api/v1';
  if (path === '/dashboard' || path.startsWith('/dashboard/')) return '/dashboard';
  return 'other';
}
