import { FlotillaErrorCode } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import CircuitBreaker from 'opossum';
import PQueue from 'p-queue';
import { UpstreamFailure } from './UpstreamFailure.js';

/** State of a node's circuit breaker. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Tuning of a {@link NodeGuard}. */
export interface NodeGuardOptions {
  /** Calls run at once on the node; more wait in the router's queue. */
  concurrency: number;
  /** Failure percentage (within the rolling window) that opens the breaker. */
  errorThresholdPercentage?: number;
  /** Calls needed in the window before the breaker may open. */
  volumeThreshold?: number;
  /** How long the breaker stays open before letting one trial call through, ms. */
  resetTimeoutMs?: number;
  /** Rolling statistics window, ms. */
  rollingWindowMs?: number;
  /** Hears every breaker state change (metrics). */
  onBreakerChange?: (to: BreakerState) => void;
}

type Task = () => Promise<unknown>;

/**
 * Per-node protection: an opossum circuit breaker around a p-queue bounding concurrency. Only node faults
 * count against the breaker (lost connections, timeouts, connection refused); a tool's error result or
 * JSON-RPC error, a cancellation, or a busy/draining answer do not. A call refused because the breaker
 * is open never reached the node, so it may be retried on another replica.
 */
export class NodeGuard {
  private readonly breaker: CircuitBreaker<[Task], unknown>;
  private readonly queue: PQueue;

  constructor(
    readonly nodeId: string,
    options: NodeGuardOptions,
    logger: Logger,
  ) {
    this.queue = new PQueue({ concurrency: options.concurrency });
    this.breaker = new CircuitBreaker<[Task], unknown>((task: Task) => task(), {
      name: `node:${nodeId}`,
      // Tools may legitimately run for minutes; call deadlines are enforced per call, not here.
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage ?? 50,
      volumeThreshold: options.volumeThreshold ?? 5,
      resetTimeout: options.resetTimeoutMs ?? 5000,
      rollingCountTimeout: options.rollingWindowMs ?? 10_000,
      errorFilter: (err: unknown) => !(err instanceof UpstreamFailure && err.countsAgainstNode),
    });
    this.breaker.on('open', () => {
      logger.warn({ nodeId }, 'circuit breaker opened');
      options.onBreakerChange?.('open');
    });
    this.breaker.on('halfOpen', () => {
      logger.info({ nodeId }, 'circuit breaker half-open: trying one call');
      options.onBreakerChange?.('half-open');
    });
    this.breaker.on('close', () => {
      logger.info({ nodeId }, 'circuit breaker closed');
      options.onBreakerChange?.('closed');
    });
  }

  get breakerState(): BreakerState {
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'half-open' : 'closed';
  }

  /** Calls waiting in the router's queue for this node. */
  get queued(): number {
    return this.queue.size;
  }

  /** Calls running on the node through this router. */
  get running(): number {
    return this.queue.pending;
  }

  /**
   * Runs `task` through the breaker and the queue. When `signal` aborts while the task still waits in the
   * queue, rejects at once with the signal's reason (the queue skips the task when its turn comes).
   */
  async run<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    try {
      return (await this.breaker.fire(() => this.enqueue(task, signal))) as T;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'EOPENBREAKER') {
        throw new UpstreamFailure('refused', this.nodeId, 'circuit breaker is open', false, FlotillaErrorCode.BreakerOpen);
      }
      if (code === 'ESHUTDOWN') throw new UpstreamFailure('refused', this.nodeId, 'node left', false);
      throw err;
    }
  }

  /** Stops the breaker's timers; the node is gone. */
  shutdown(): void {
    this.breaker.shutdown();
    this.queue.clear();
  }

  private enqueue<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason);
    let started = false;
    // The signal is not given to p-queue: it would also race running tasks and free their slot while
    // the node still works on them. A task whose caller gave up is skipped when its turn comes.
    const queued = this.queue.add(() => {
      if (signal.aborted) return Promise.reject(signal.reason);
      started = true;
      return task();
    }) as Promise<T>;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        // A running task ends through its own signal handling (the upstream request is cancelled).
        if (!started) reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queued.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}
