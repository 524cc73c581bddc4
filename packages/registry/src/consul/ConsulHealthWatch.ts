import type { Logger } from '@flotilla/telemetry';
import type { RegisteredNode, RegistryWatch, RegistryWatchEvent } from '../Registry.js';
import type { ConsulEntryReader } from './consulEntries.js';
import type { ConsulHttpApi } from './ConsulHttpApi.js';
import { ConsulRequestError } from './ConsulRequestError.js';

/** Tuning of {@link ConsulHealthWatch}. */
export interface ConsulHealthWatchOptions {
  serviceName: string;
  /** `wait` of each blocking query, ms (Consul caps it at 10 minutes). */
  waitMs: number;
  /** Least time between two queries, ms: Consul's docs ask clients to rate-limit blocking loops. */
  minIntervalMs: number;
  /** First retry delay after a failure, ms; doubles up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Turns a failure into the message the listener sees (e.g. naming CONSUL_HTTP_TOKEN on 403). */
  describeError: (err: unknown) => string;
}

/**
 * Next blocking index from the previous one and the `X-Consul-Index` Consul returned, following Consul's
 * "blocking queries" implementation notes: reset to 0 when the index goes backwards (Consul restarted,
 * snapshot restore, a different server), and never block on 0 (use 1) so a buggy zero index cannot turn
 * the loop into a busy loop.
 */
export function nextBlockingIndex(previous: bigint, returned: bigint | undefined): bigint {
  if (returned === undefined) return 0n;
  if (returned < previous) return 0n;
  return returned < 1n ? 1n : returned;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Follows the live nodes of one Consul service with blocking queries on `/v1/health/service/:service`.
 *
 * The query does not use `?passing`: that would drop `warning` instances (degraded or draining nodes), which
 * the Registry contract counts as live. Instead every instance is fetched and those whose worst check is
 * critical are left out here. While Consul is unreachable or failing, the last view is kept, one
 * `status reachable:false` is reported, and retries back off exponentially; the first answer after that
 * reports `reachable:true` and a fresh snapshot (the index restarts at 0, since Consul may have restarted).
 */
export class ConsulHealthWatch implements RegistryWatch {
  private readonly abort = new AbortController();
  private index = 0n;
  private reachable = true;
  private lastError: string | undefined;
  private lastEmitted: string | undefined;
  private warnedAboutAcl = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly api: ConsulHttpApi,
    private readonly reader: ConsulEntryReader,
    private readonly options: ConsulHealthWatchOptions,
    private readonly listener: (event: RegistryWatchEvent) => void,
    private readonly logger: Logger,
  ) {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let backoffMs = this.options.initialBackoffMs;
    while (!this.stopped) {
      const startedAt = Date.now();
      try {
        const answer = await this.api.blockingHealthEntries(this.options.serviceName, {
          ...(this.index > 0n ? { index: this.index } : {}),
          waitMs: this.options.waitMs,
          signal: this.abort.signal,
        });
        if (this.stopped) return;
        backoffMs = this.options.initialBackoffMs;
        this.index = nextBlockingIndex(this.index, answer.index);
        if (answer.filteredByAcls && !this.warnedAboutAcl) {
          this.warnedAboutAcl = true;
          this.logger.warn(
            { service: this.options.serviceName },
            'Consul filtered the service list by ACLs: the token in CONSUL_HTTP_TOKEN lacks service:read or node:read, so some nodes are invisible',
          );
        }
        const live = this.reader.read(answer.entries).filter((n) => n.health !== 'critical');
        if (!this.reachable) {
          this.reachable = true;
          this.lastError = undefined;
          this.logger.info({ service: this.options.serviceName }, 'Consul reachable again; registry watch resumed');
          this.notify({ type: 'status', reachable: true });
        }
        this.emit(live);
        const elapsed = Date.now() - startedAt;
        if (elapsed < this.options.minIntervalMs) await sleep(this.options.minIntervalMs - elapsed, this.abort.signal);
      } catch (err) {
        if (this.stopped) return;
        const message = this.options.describeError(err);
        if (this.reachable || message !== this.lastError) {
          const retryable = !(err instanceof ConsulRequestError) || err.retryable;
          this.logger[retryable ? 'warn' : 'error']({ err, service: this.options.serviceName }, 'Consul registry watch failed; keeping the last known nodes and retrying');
          this.reachable = false;
          this.lastError = message;
          this.notify({ type: 'status', reachable: false, error: message });
        }
        // Whatever Consul comes back as may have a lower index; start over with a non-blocking read.
        this.index = 0n;
        const jittered = backoffMs / 2 + Math.random() * (backoffMs / 2);
        await sleep(jittered, this.abort.signal);
        backoffMs = Math.min(this.options.maxBackoffMs, backoffMs * 2);
      }
    }
  }

  private emit(nodes: RegisteredNode[]): void {
    // Ping data changes with every heartbeat; a new view is worth sending when membership, records or health change.
    const key = JSON.stringify(nodes.map((n) => [n.record, n.health]));
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    this.notify({ type: 'snapshot', nodes });
  }

  /** A throwing listener is the caller's bug; it must not be mistaken for a Consul failure. */
  private notify(event: RegistryWatchEvent): void {
    try {
      this.listener(event);
    } catch (err) {
      this.logger.error({ err }, 'registry watch listener threw');
    }
  }
}
