import { FlotillaErrorCode } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import CircuitBreaker from 'opossum';
import PQueue from 'p-queue';
import { isNodeFault, isToolFault } from './breakerFaults.js';
import { UpstreamFailure } from '../upstream/UpstreamFailure.js';

/** State of a circuit breaker. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Tuning of a {@link NodeGuard}. */
export interface NodeGuardOptions {
  /** Calls run at once on the node; more wait in the router's queue. */
  concurrency: number;
  /** Failure percentage (within the rolling window) that opens a breaker. */
  errorThresholdPercentage?: number;
  /** Calls needed in the window before a breaker may open. */
  volumeThreshold?: number;
  /** How long a breaker stays open before letting one trial call through, ms. */
  resetTimeoutMs?: number;
  /** Rolling statistics window, ms. */
  rollingWindowMs?: number;
  /** Hears every state change of the node's breaker (metrics). */
  onBreakerChange?: (to: BreakerState) => void;
  /** Hears every state change of a per-tool breaker on this node. */
  onToolBreakerChange?: (tool: string, to: BreakerState) => void;
}

type Task = () => Promise<unknown>;

/** Most per-tool breakers kept per node (tools come from the catalog, so this is only a safety bound). */
const MAX_TOOL_BREAKERS = 1024;

function stateOf(breaker: CircuitBreaker<[Task], unknown>): BreakerState {
  return breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed';
}

/**
 * Per-node protection: opossum circuit breakers around a p-queue bounding concurrency.
 *
 * - The node's breaker counts connection-level faults only (lost connections, refused connections, lost
 *   streams; see {@link isNodeFault}); it can also be opened by the router's liveness watchdog
 *   ({@link trip}) when a node stops reporting and stops answering pings.
 * - One breaker per tool on this node counts faults of that tool alone (JSON-RPC errors that are not the
 *   caller's fault, hung calls; see {@link isToolFault}), so one broken tool leaves the node's other tools
 *   in rotation.
 *
 * A tool result with `isError`, a cancellation, or a busy/draining answer counts against neither. A call
 * refused because a breaker is open never reached the node, so it may be retried on another replica.
 * Every state change is logged.
 */
export class NodeGuard {
  private readonly breaker: CircuitBreaker<[Task], unknown>;
  private readonly toolBreakers = new Map<string, CircuitBreaker<[Task], unknown>>();
  private readonly queue: PQueue;
  private tripReason: string | undefined;

  constructor(
    readonly nodeId: string,
    private readonly options: NodeGuardOptions,
    private readonly logger: Logger,
  ) {
    this.queue = new PQueue({ concurrency: options.concurrency });
    this.breaker = this.createBreaker(`node:${nodeId}`, (err) => !isNodeFault(err));
    this.breaker.on('open', () => {
      const reason = this.tripReason;
      this.tripReason = undefined;
      logger.warn({ nodeId, ...(reason ? { reason } : {}) }, 'circuit breaker opened');
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
    return stateOf(this.breaker);
  }

  /** State of the breaker of `tool` (`<server>/<tool>`) on this node; closed when it never failed. */
  toolBreakerState(tool: string): BreakerState {
    const b = this.toolBreakers.get(tool);
    return b ? stateOf(b) : 'closed';
  }

  /** Every per-tool breaker this node has, by `<server>/<tool>`. */
  toolBreakerStates(): Record<string, BreakerState> {
    const out: Record<string, BreakerState> = {};
    for (const [tool, b] of this.toolBreakers) out[tool] = stateOf(b);
    return out;
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
   * Opens the node's breaker now (the liveness watchdog found the node unresponsive). After the reset
   * timeout it lets one trial call through, as after any opening.
   */
  trip(reason: string): void {
    if (this.breaker.opened) return;
    this.tripReason = reason;
    this.breaker.open();
  }

  /**
   * Runs `task` through the breakers (the node's, and `tool`'s when given) and the queue. When `signal`
   * aborts while the task still waits in the queue, rejects at once with the signal's reason (the queue
   * skips the task when its turn comes).
   */
  async run<T>(task: () => Promise<T>, signal: AbortSignal, tool?: string): Promise<T> {
    // Checked before the tool's breaker fires: a refusal by the node's breaker must not count as the
    // tool's trial call (opossum treats errors its filter lets through as successes).
    if (!this.breaker.closed && !this.breaker.pendingClose) throw this.breakerOpen();
    const throughNode = (): Promise<unknown> => this.breaker.fire(() => this.enqueue(task, signal));
    const toolBreaker = tool === undefined ? undefined : this.toolBreaker(tool);
    try {
      return (await (toolBreaker ? toolBreaker.fire(throughNode) : throughNode())) as T;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'EOPENBREAKER') throw toolBreaker && !toolBreaker.closed ? this.breakerOpen(tool) : this.breakerOpen();
      if (code === 'ESHUTDOWN') throw new UpstreamFailure('refused', this.nodeId, 'node left', false);
      throw err;
    }
  }

  /** Stops the breakers' timers; the node is gone. */
  shutdown(): void {
    this.breaker.shutdown();
    for (const b of this.toolBreakers.values()) b.shutdown();
    this.toolBreakers.clear();
    this.queue.clear();
  }

  private breakerOpen(tool?: string): UpstreamFailure {
    const what = tool === undefined ? 'circuit breaker is open' : `circuit breaker of ${tool} is open`;
    return new UpstreamFailure('refused', this.nodeId, what, false, FlotillaErrorCode.BreakerOpen);
  }

  private createBreaker(name: string, isFiltered: (err: unknown) => boolean): CircuitBreaker<[Task], unknown> {
    return new CircuitBreaker<[Task], unknown>((task: Task) => task(), {
      name,
      // Tools may legitimately run for minutes; call deadlines are enforced per call, not here.
      timeout: false,
      errorThresholdPercentage: this.options.errorThresholdPercentage ?? 50,
      volumeThreshold: this.options.volumeThreshold ?? 5,
      resetTimeout: this.options.resetTimeoutMs ?? 5000,
      rollingCountTimeout: this.options.rollingWindowMs ?? 10_000,
      errorFilter: isFiltered,
    });
  }

  private toolBreaker(tool: string): CircuitBreaker<[Task], unknown> | undefined {
    let b = this.toolBreakers.get(tool);
    if (b) return b;
    if (this.toolBreakers.size >= MAX_TOOL_BREAKERS) return undefined;
    b = this.createBreaker(`node:${this.nodeId}:tool:${tool}`, (err) => !isToolFault(err));
    const { nodeId, logger, options } = this;
    b.on('open', () => {
      logger.warn({ nodeId, tool }, 'circuit breaker of a tool opened: the tool keeps failing on this node');
      options.onToolBreakerChange?.(tool, 'open');
    });
    b.on('halfOpen', () => {
      logger.info({ nodeId, tool }, 'circuit breaker of a tool half-open: trying one call');
      options.onToolBreakerChange?.(tool, 'half-open');
    });
    b.on('close', () => {
      logger.info({ nodeId, tool }, 'circuit breaker of a tool closed');
      options.onToolBreakerChange?.(tool, 'closed');
    });
    this.toolBreakers.set(tool, b);
    return b;
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
