/**
 * Formats milliseconds as a Consul (Go `time.ParseDuration`) duration string: `1m`, `3s`, `1500ms`.
 * Consul's HTTP API takes durations as such strings in check definitions and the blocking `wait` parameter.
 */
export function formatConsulDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`duration must be a positive number of ms, got ${ms}`);
  const whole = Math.round(ms);
  if (whole % 60_000 === 0) return `${whole / 60_000}m`;
  if (whole % 1000 === 0) return `${whole / 1000}s`;
  return `${whole}ms`;
}
