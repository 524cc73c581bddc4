import { PingDataSchema, type PingData } from '@flotilla/protocol';
import type { NodeHealth } from '../Registry.js';
import type { ConsulHealthCheck } from './consulSchemas.js';

const RANK: Record<NodeHealth, number> = { passing: 0, warning: 1, critical: 2 };

/** Maps a Consul check status to a node health; unknown states count as critical (fail safe). */
export function checkStatusToHealth(status: string): NodeHealth {
  return status === 'passing' || status === 'warning' ? status : 'critical';
}

/**
 * Health of a service instance: the worst of all its checks, node checks (`serfHealth`, node maintenance)
 * included, which is how Consul itself judges an instance. An instance without checks is passing.
 */
export function worstHealth(checks: readonly ConsulHealthCheck[]): NodeHealth {
  let worst: NodeHealth = 'passing';
  for (const check of checks) {
    const health = checkStatusToHealth(check.Status);
    if (RANK[health] > RANK[worst]) worst = health;
  }
  return worst;
}

/** The TTL check status a heartbeat reports: `warning` while degraded or draining, so operators see it in Consul. */
export function pingToCheckStatus(ping: PingData): 'passing' | 'warning' {
  return ping.status === 'ok' ? 'passing' : 'warning';
}

/** What Consul prefixes to a TTL check's last output when the TTL expires (agent/checks CheckTTL). */
const TTL_EXPIRED_PREFIX = 'TTL expired (last output before timeout follows): ';

/**
 * Ping data from a TTL check's output: the JSON the agent wrote, or, after the TTL expired, the last
 * output that Consul appends to its "TTL expired" note. `undefined` when there is none or it is invalid.
 */
export function parsePingOutput(output: string | null | undefined): PingData | undefined {
  if (!output) return undefined;
  const json = output.startsWith(TTL_EXPIRED_PREFIX) ? output.slice(TTL_EXPIRED_PREFIX.length) : output;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const result = PingDataSchema.safeParse(parsed);
  return result.success ? result.data : undefined;
}
