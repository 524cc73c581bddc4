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
    /** A priming event (spec 2025-11-25) to send with the headers: an id the client can resume from. */
    prime?: { id: string; retryMs?: number },
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    if (prime) {
      // Headers and priming event in one write, made now (Node would defer it to the next tick): a replica
      // killed after a client saw the headers has always sent the id to resume from, and one killed before
      // sent nothing, so the load balancer may send the request to another replica (nothing was forwarded).
      res.cork();
      res.write(prime.retryMs === undefined ? `id: ${prime.id}\ndata: \n\n` : `id: ${prime.id}\nretry: ${prime.retryMs}\ndata: \n\n`);
      res.uncork();
    } else {
      res.flushHeaders();
    }
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

  /**
   * Sends one message (already JSON text) as an event, with `id` when given; with `last`, the response
   * ends with it (one write for both). False when the stream is closed.
   */
  send(json: string, id?: string, last = false): boolean {
    if (this.closed) return false;
    const frame = id === undefined ? `event: message\ndata: ${json}\n\n` : `id: ${id}\nevent: message\ndata: ${json}\n\n`;
    if (!last) {
      this.res.write(frame);
      return true;
    }
    this.res.end(frame);
    this.markClosed();
    return true;
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
