import type { ToolLatencyEstimate } from '../balancer/LoadSignals.js';
import { PeakEwma } from './PeakEwma.js';

/** Weight of the newest sample in a tool's EWMA (the agents use the same). */
const EWMA_ALPHA = 0.2;
/** Recent samples kept per tool for its p95. */
const WINDOW = 64;
/** Samples needed before a p95 is trusted (hedging waits for it). */
export const MIN_SAMPLES_FOR_P95 = 20;

class ToolLatencyWindow {
  ewmaMs = 0;
  count = 0;
  lastAt = 0;
  private readonly samples = new Float64Array(WINDOW);

  add(ms: number, now: number): void {
    this.lastAt = now;
    this.ewmaMs = this.count === 0 ? ms : this.ewmaMs + EWMA_ALPHA * (ms - this.ewmaMs);
    this.samples[this.count % WINDOW] = ms;
    this.count += 1;
  }

  p95(): number | undefined {
    if (this.count < MIN_SAMPLES_FOR_P95) return undefined;
    const n = Math.min(this.count, WINDOW);
    const sorted = Array.from(this.samples.subarray(0, n)).sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.ceil(0.95 * n) - 1)];
  }
}

/**
 * Response times this router measured on one node, from sending a call to its answer (router queueing
 * excluded): a peak EWMA over every call (what P2C-EWMA balances on), and per `<server>/<tool>` an EWMA
 * (cold-start fallback of the progress-aware estimate) and a recent-window p95 (when to hedge).
 */
export class NodeLatency {
  private readonly peak = new PeakEwma();
  private readonly tools = new Map<string, ToolLatencyWindow>();

  observe(tool: string | undefined, ms: number, now: number): void {
    this.peak.observe(ms, now);
    if (tool === undefined) return;
    let window = this.tools.get(tool);
    if (!window) this.tools.set(tool, (window = new ToolLatencyWindow()));
    window.add(Math.max(0, ms), now);
  }

  peakEwmaMs(now: number): number | undefined {
    return this.peak.value(now);
  }

  /** EWMA per `<server>/<tool>` and the time since its last sample. */
  toolEstimates(now: number): Record<string, ToolLatencyEstimate> {
    const out: Record<string, ToolLatencyEstimate> = {};
    for (const [tool, w] of this.tools) out[tool] = { ewmaMs: w.ewmaMs, ageMs: Math.max(0, now - w.lastAt) };
    return out;
  }

  /** p95 of the tool's recent response times here, once enough samples exist. */
  p95Ms(tool: string): number | undefined {
    return this.tools.get(tool)?.p95();
  }
}
