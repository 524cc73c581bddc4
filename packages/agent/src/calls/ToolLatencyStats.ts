import type { z } from 'zod';
import type { ToolLatencySchema } from '@flotilla/protocol';

type ToolLatency = z.infer<typeof ToolLatencySchema>;

/**
 * Exponentially weighted moving average of call duration per `<server>/<tool>`. The first sample sets the
 * average, so a fresh node does not report 0 ms for a tool that takes seconds.
 */
export class ToolLatencyStats {
  private readonly stats = new Map<string, ToolLatency>();

  /** `alpha` is the weight of the newest sample (0..1]. */
  constructor(private readonly alpha = 0.2) {}

  record(key: string, durationMs: number): void {
    const sample = Math.max(0, durationMs);
    const prev = this.stats.get(key);
    if (!prev) {
      this.stats.set(key, { ewmaMs: sample, completed: 1 });
      return;
    }
    prev.ewmaMs = prev.ewmaMs + this.alpha * (sample - prev.ewmaMs);
    prev.completed += 1;
  }

  /** A copy, keyed by `<server>/<tool>`, rounded to 0.1 ms. */
  snapshot(): Record<string, ToolLatency> {
    const out: Record<string, ToolLatency> = {};
    for (const [key, s] of this.stats) out[key] = { ewmaMs: Math.round(s.ewmaMs * 10) / 10, completed: s.completed };
    return out;
  }
}
