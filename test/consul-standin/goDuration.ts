/**
 * Go `time.Duration` strings, as Consul's HTTP API takes them ("10s", "1m30s", "1500ms") and as it
 * prints them back in check listings (Go's `Duration.String()`: "10s", "1m0s", "1.5s").
 */

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration into ms; `undefined` when it is not one. A bare "0" is zero, as in Go. */
export function parseGoDuration(text: string): number | undefined {
  const value = text.trim();
  if (value === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? NaN);
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== value.length || !Number.isFinite(total)) return undefined;
  return total;
}

/** Formats ms like Go's `Duration.String()` for the durations a check definition uses. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${Number(ms.toFixed(3))}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = Number(((ms % 60_000) / 1000).toFixed(3));
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
