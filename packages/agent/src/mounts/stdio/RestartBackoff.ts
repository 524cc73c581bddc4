/** Restart policy of a mounted process (see `StdioServerSpec.restart`). */
export interface RestartPolicy {
  /** Delay before the first restart after a failure, ms. */
  initialDelayMs: number;
  /** Longest delay between two starts, ms. */
  maxDelayMs: number;
  /** A process that served this long before it ended was healthy: the next restart is immediate-ish again. */
  stableAfterMs: number;
}

/**
 * Exponential backoff between starts of a mounted process: each failure in a row doubles the delay, from
 * `initialDelayMs` up to `maxDelayMs`; a process that had served for `stableAfterMs` resets it. A command
 * that crashes at once therefore restarts after 0.5 s, 1 s, 2 s, 4 s… never in a tight loop.
 */
export class RestartBackoff {
  private failures = 0;

  constructor(private readonly policy: RestartPolicy) {}

  /** Failures in a row so far (starts that did not reach a stable run). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /**
   * A process ended after serving `servedMs` (0 when it never finished starting): the delay before the
   * next start.
   */
  next(servedMs: number): number {
    if (servedMs >= this.policy.stableAfterMs) this.failures = 0;
    const delay = Math.min(this.policy.maxDelayMs, this.policy.initialDelayMs * 2 ** Math.min(this.failures, 30));
    this.failures += 1;
    return delay;
  }

  /** A start succeeded and served long enough: forget the failures. */
  reset(): void {
    this.failures = 0;
  }
}
