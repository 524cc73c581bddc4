/**
 * Finagle's peak EWMA of response time: a sample slower than the current estimate replaces it at once
 * (so a node that turns slow is avoided immediately); faster samples pull it down with a weight that
 * grows with the time since the previous sample, and with no samples it decays toward zero (so a node
 * that was avoided gets tried again). Time constant `decayMs` (Finagle's default: 10 s).
 */
export class PeakEwma {
  private cost = 0;
  private stamp: number | undefined;

  constructor(private readonly decayMs = 10_000) {}

  /** Adds a sample of `ms` observed at `now` (epoch ms). */
  observe(ms: number, now: number): void {
    const sample = Math.max(0, ms);
    if (this.stamp === undefined) {
      this.cost = sample;
      this.stamp = now;
      return;
    }
    const w = Math.exp(-Math.max(0, now - this.stamp) / this.decayMs);
    this.cost = sample > this.cost ? sample : this.cost * w + sample * (1 - w);
    this.stamp = now;
  }

  /** The estimate decayed to `now`, or undefined before the first sample. */
  value(now: number): number | undefined {
    if (this.stamp === undefined) return undefined;
    return this.cost * Math.exp(-Math.max(0, now - this.stamp) / this.decayMs);
  }
}
