/**
 * Token buckets by key (a client or a session): `rate` tokens per second, up to `burst`. Buckets that
 * have refilled are forgotten, so the map holds only keys active in the last `burst / rate` seconds.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly fullAfterMs: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {
    this.fullAfterMs = (burst / rate) * 1000;
  }

  /** Takes a token for `key`: 0 when there was one, else the ms until there will be. */
  take(key: string, now = performance.now()): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return ((1 - b.tokens) / this.rate) * 1000;
  }

  private sweep(now: number): void {
    for (const [key, b] of this.buckets) if (now - b.at >= this.fullAfterMs) this.buckets.delete(key);
    // Still full of active keys: forget the oldest half rather than grow.
    if (this.buckets.size >= this.maxKeys) {
      let n = Math.floor(this.maxKeys / 2);
      for (const key of this.buckets.keys()) {
        if (n-- <= 0) break;
        this.buckets.delete(key);
      }
    }
  }
}
