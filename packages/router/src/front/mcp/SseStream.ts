import type { ServerResponse } from 'node:http';

/** How often a quiet stream gets a comment line, ms: proxies and load balancers keep it open, and a dead client shows. */
const KEEPALIVE_MS = 15_000;

/**
 * One `text/event-stream` response to a client: the JSON-RPC messages of one POST, or the session's
 * standalone GET stream. Each event may carry an id, which the client sends back as `Last-Event-ID` to
 * resume. Writes are synchronous and cheap (one string per event); a closed response takes no more.
 */
export class SseStream {
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string>,
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    res.flushHeaders();
    this.keepAlive = setInterval(() => this.comment('keepalive'), KEEPALIVE_MS);
    this.keepAlive.unref();
    res.once('close', () => this.markClosed());
  }

  /** Whether the stream still reaches the client. */
  get open(): boolean {
    return !this.closed;
  }

  /** Calls `listener` once the response closed (ended by us, or the client went away). */
  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  /** Sends one message (already JSON text) as an event, with `id` when given. False when the stream is closed. */
  send(json: string, id?: string): boolean {
    if (this.closed) return false;
    this.res.write(id === undefined ? `event: message\ndata: ${json}\n\n` : `id: ${id}\nevent: message\ndata: ${json}\n\n`);
    return true;
  }

  /** An event with an id and no data (spec 2025-11-25): the client can resume from here if the stream breaks. */
  prime(id: string, retryMs?: number): void {
    if (this.closed) return;
    this.res.write(retryMs === undefined ? `id: ${id}\ndata: \n\n` : `id: ${id}\nretry: ${retryMs}\ndata: \n\n`);
  }

  /** Ends the response. */
  end(): void {
    if (this.closed) return;
    this.res.end();
    this.markClosed();
  }

  private comment(text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`);
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    for (const l of this.closeListeners.splice(0)) l();
  }
}
