import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import type { DashboardModel } from './DashboardModel.js';

/** How often open pages get a new snapshot, ms. */
export const DASHBOARD_PUSH_INTERVAL_MS = 1000;
/** Pages that may stream at once; more get 503 and fall back to polling. */
export const MAX_DASHBOARD_STREAMS = 64;
/** A page that has not read this much yet is too slow to follow; it is dropped and reconnects. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Live updates for open dashboards (`GET /dashboard/events`, Server-Sent Events): one snapshot at once,
 * then one every second while at least one page listens. The snapshot is built once per tick whatever
 * the number of pages. Pages whose connection backs up are dropped rather than buffered without bound.
 */
export class DashboardStream {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private building = false;

  constructor(
    private readonly model: DashboardModel,
    private readonly logger: Logger,
    private readonly intervalMs = DASHBOARD_PUSH_INTERVAL_MS,
    private readonly maxClients = MAX_DASHBOARD_STREAMS,
  ) {}

  /** Pages streaming now. */
  get size(): number {
    return this.clients.size;
  }

  open(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= this.maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end('too many dashboard streams; poll /api/v1/dashboard instead\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Reverse proxies (nginx) must pass events through as they come.
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // The browser reconnects by itself after this many ms when the stream breaks.
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    res.once('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.pause();
    });
    void this.frame().then((frame) => {
      if (this.clients.has(res)) this.send(res, frame);
    });
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
  }

  /** Ends every stream (router stopping). */
  close(): void {
    this.pause();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private async tick(): Promise<void> {
    if (this.clients.size === 0) return this.pause();
    // A slow registry read must not pile up ticks: skip this one while the last is still being built.
    if (this.building) return;
    this.building = true;
    try {
      const frame = await this.frame();
      for (const res of this.clients) this.send(res, frame);
    } finally {
      this.building = false;
    }
  }

  private async frame(): Promise<string> {
    try {
      // JSON.stringify writes no newlines, so one `data:` line carries the whole snapshot.
      return `data: ${JSON.stringify(await this.model.snapshot())}\n\n`;
    } catch (err) {
      this.logger.error({ err }, 'cannot build the dashboard snapshot');
      return ': snapshot failed; see the router log\n\n';
    }
  }

  private send(res: ServerResponse, frame: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.logger.warn({ buffered: res.writableLength }, 'dashboard stream too slow; dropping it (the page reconnects)');
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }

  private pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
