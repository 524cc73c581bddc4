import { isPureReference } from '@flotilla/agent';
import type { ValueSource } from './optionSources.js';

/** Shown in place of a value that may be a secret. */
export const REDACTED = '<redacted>';

/** What `--print-config` prints. */
export interface PrintedConfig {
  precedence: string;
  configFile: string | null;
  options: Record<string, { value: unknown; source: ValueSource }>;
  servers?: Record<string, unknown>;
}

/**
 * An `mcpServers` map as written, safe to print: values of `env` and `headers` are redacted unless they
 * are exactly one `${VAR}` reference (which names a secret without holding it); a URL loses its user
 * info and query.
 */
export function redactServers(servers: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(servers).map(([name, entry]) => [name, redactEntry(entry)]));
}

function redactEntry(entry: unknown): unknown {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return entry;
  const out: Record<string, unknown> = { ...(entry as Record<string, unknown>) };
  for (const key of ['env', 'headers']) {
    const map = out[key];
    if (typeof map === 'object' && map !== null && !Array.isArray(map)) {
      out[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, typeof v === 'string' && isPureReference(v) ? v : REDACTED]));
    }
  }
  if (typeof out.url === 'string') out.url = redactUrl(out.url);
  return out;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password && !u.search) return url;
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? `?${REDACTED}` : ''}`;
  } catch {
    return url;
  }
}

/** Writes the resolved configuration as JSON on stdout. */
export function printConfig(config: PrintedConfig): void {
  process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
}
