import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * Event-loop delay of this process: how late timers fire, a cheap sign that the node is overloaded even
 * when few calls are in flight. Reports the p99 of the window since the last {@link sample}.
 */
export class EventLoopLag {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private lastMs = 0;

  constructor() {
    this.histogram.enable();
  }

  /** p99 delay (ms) since the previous sample; the window then starts over. */
  sample(): number {
    const p99 = this.histogram.percentile(99);
    // No samples yet gives 0 or NaN; the histogram counts the sampling interval itself, so subtract it.
    this.lastMs = Number.isFinite(p99) && p99 > 0 ? Math.max(0, p99 / 1e6 - 20) : 0;
    this.histogram.reset();
    return Math.round(this.lastMs * 10) / 10;
  }

  /** The last sampled value, without starting a new window. */
  get latestMs(): number {
    return Math.round(this.lastMs * 10) / 10;
  }

  stop(): void {
    this.histogram.disable();
  }
}
