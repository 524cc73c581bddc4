import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import { sendJson } from '../../front/JsonRpcHttpError.js';
import type { DashboardAsset, DashboardAssetPath } from './DashboardAssets.js';
import type { DashboardModel } from './DashboardModel.js';
import type { DashboardStream } from './DashboardStream.js';

/**
 * The page may only load its own files and talk to its own router: no inline script, no third party,
 * not framed. Node ids and tool names come from the network, and the page writes them as text only;
 * this policy is the second line of defence.
 */
const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * HTTP side of the dashboard: the page and its two files (`/dashboard`, `/dashboard/dashboard.{css,js}`),
 * live updates (`/dashboard/events`, SSE) and the same data for polling and scripts (`/api/v1/dashboard`).
 */
export class DashboardEndpoints {
  constructor(
    private readonly model: DashboardModel,
    private readonly stream: DashboardStream,
    /** Undefined when the files could not be read at start (logged then); the JSON endpoints still work. */
    private readonly assets: ReadonlyMap<DashboardAssetPath, DashboardAsset> | undefined,
    private readonly logger: Logger,
  ) {}

  asset(path: DashboardAssetPath, req: IncomingMessage, res: ServerResponse): void {
    const asset = this.assets?.get(path);
    if (!asset) {
      this.logger.error({ path }, 'dashboard page files are missing from this installation');
      sendJson(res, 500, { error: 'dashboard page files are missing from this installation; /api/v1/dashboard still works' });
      return;
    }
    const headers = { ...PAGE_SECURITY_HEADERS, 'content-type': asset.contentType, etag: asset.etag, 'cache-control': 'no-cache' };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(asset.body.length) });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }

  events(req: IncomingMessage, res: ServerResponse): void {
    this.stream.open(req, res);
  }

  async snapshot(res: ServerResponse): Promise<void> {
    sendJson(res, 200, await this.model.snapshot());
  }
}
