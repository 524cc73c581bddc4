import { EventEmitter } from 'node:events';
import { connect, headers, type NatsConnection, type Payload } from '@nats-io/transport-node';
import { injectTraceHeaders, type Logger } from '@flotilla/telemetry';
import { describeNats, natsConnectionOptions, type NatsSettings } from '@flotilla/trust';
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';

/** Where the agent's NATS connection stands. */
export type NatsLinkState = 'connecting' | 'connected' | 'disconnected' | 'stopped';

interface NatsLinkEvents {
  /** A new connection is up (first connect, or a replacement after the client gave up). */
  connection: [NatsConnection];
  state: [NatsLinkState];
}

/** Options of {@link NatsLink}. */
export interface NatsLinkOptions {
  /** Servers, authentication and TLS. */
  settings: NatsSettings;
  /** Connection name shown by the NATS server. */
  name: string;
  logger: Logger;
}

/**
 * The agent's NATS connection, kept up for the agent's whole life: the first connection is retried with
 * backoff until NATS is reachable (an agent may start before NATS), after which the client reconnects on
 * its own forever (`maxReconnectAttempts: -1`). Publishing never throws and never blocks: while
 * disconnected, reports are dropped rather than buffered, since a stale load report helps nobody.
 *
 * The first connect is our own loop rather than `waitOnFirstConnect`, whose dial loop has no handle to
 * stop it before it succeeds, so an agent stopped while NATS is down would never let go.
 */
export class NatsLink extends EventEmitter<NatsLinkEvents> {
  private nc: NatsConnection | undefined;
  private current: NatsLinkState = 'connecting';
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: NatsLinkOptions) {
    super();
  }

  get state(): NatsLinkState {
    return this.current;
  }

  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** Starts connecting; resolves after the first attempt, true when it connected. */
  start(): Promise<boolean> {
    let first!: (connected: boolean) => void;
    const attempted = new Promise<boolean>((resolve) => {
      first = resolve;
    });
    this.loop = this.connectLoop(first);
    return attempted;
  }

  /**
   * Publishes, with the W3C trace context of `ctx` (default: none) in the headers; false when not connected
   * or the client refused. Reports are published from timers, where the active context is whatever call
   * happened to schedule the timer, so the caller says which trace a message belongs to, if any.
   */
  publish(subject: string, payload: Payload, ctx: Context = ROOT_CONTEXT, extraHeaders: Readonly<Record<string, string>> = {}): boolean {
    const nc = this.nc;
    if (!nc || this.current !== 'connected') return false;
    try {
      const h = headers();
      injectTraceHeaders(h, ctx);
      for (const [k, v] of Object.entries(extraHeaders)) h.set(k, v);
      nc.publish(subject, payload, h.keys().length > 0 ? { headers: h } : undefined);
      return true;
    } catch (err) {
      this.options.logger.debug({ err, subject }, 'NATS publish failed');
      return false;
    }
  }

  /** Round-trip time to the server in ms, or undefined while not connected. */
  async rtt(): Promise<number | undefined> {
    const nc = this.nc;
    if (!nc || this.current !== 'connected') return undefined;
    try {
      return await nc.rtt();
    } catch {
      return undefined;
    }
  }

  /** Flushes what was published and closes the connection; stops any connect attempts. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const nc = this.nc;
    this.nc = undefined;
    this.setState('stopped');
    if (nc && !nc.isClosed()) {
      await Promise.race([nc.drain().catch(() => nc.close()), new Promise((r) => setTimeout(r, 2000).unref())]);
      if (!nc.isClosed()) await nc.close().catch(() => {});
    }
    await this.loop?.catch(() => {});
  }

  private async connectLoop(first?: (connected: boolean) => void): Promise<void> {
    const { logger, settings, name } = this.options;
    // Never the credentials: servers are redacted, the auth method is named, not shown.
    const where = describeNats(settings);
    const url = where.servers;
    let backoffMs = 250;
    let warned = false;
    while (!this.stopped) {
      this.setState('connecting');
      try {
        const nc = await connect(natsConnectionOptions(settings, { name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000, waitOnFirstConnect: false }));
        if (this.stopped) {
          await nc.close().catch(() => {});
          break;
        }
        this.nc = nc;
        this.setState('connected');
        logger.info({ nats: url, auth: where.auth, tls: where.tls }, 'connected to NATS');
        first?.(true);
        first = undefined;
        this.emit('connection', nc);
        await this.follow(nc);
        if (this.stopped) break;
        logger.warn({ nats: url }, 'NATS connection closed; connecting again');
        backoffMs = 250;
      } catch (err) {
        if (!warned) logger.warn({ err, nats: url, auth: where.auth, tls: where.tls }, 'NATS unreachable; serving anyway and retrying');
        warned = true;
        first?.(false);
        first = undefined;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoffMs);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
        backoffMs = Math.min(5000, backoffMs * 2);
      }
    }
    first?.(false);
  }

  /** Tracks a live connection's state until it closes for good. */
  private async follow(nc: NatsConnection): Promise<void> {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.options.logger.warn('NATS connection lost; reconnecting');
          this.setState('disconnected');
        } else if (s.type === 'reconnect') {
          this.options.logger.info('NATS connection restored');
          this.setState('connected');
        }
      }
    })().catch(() => {});
    await nc.closed();
    if (this.nc === nc) this.nc = undefined;
  }

  private setState(state: NatsLinkState): void {
    if (this.current === state || (this.current === 'stopped' && state !== 'stopped')) return;
    this.current = state;
    this.emit('state', state);
  }
}
