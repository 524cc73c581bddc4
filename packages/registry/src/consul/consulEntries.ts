import type { Logger } from '@flotilla/telemetry';
import type { RegisteredNode } from '../Registry.js';
import { parsePingOutput, worstHealth } from './consulHealth.js';
import { ConsulServiceEntrySchema } from './consulSchemas.js';
import { PING_CHECK_PREFIX } from './consulServiceDefinition.js';
import { decodeRecordMeta } from './recordMeta.js';

/**
 * Turns raw `/v1/health/service` entries into registered nodes. Entries that are not valid Consul
 * entries, or whose meta does not hold a valid record for that service id, are skipped with one warning
 * per distinct problem (the watch re-reads the same entries often; the log should not repeat itself).
 */
export class ConsulEntryReader {
  private readonly warned = new Map<string, string>();

  constructor(private readonly logger: Logger) {}

  read(entries: readonly unknown[]): RegisteredNode[] {
    const nodes: RegisteredNode[] = [];
    const seen = new Set<string>();
    for (const raw of entries) {
      const entry = ConsulServiceEntrySchema.safeParse(raw);
      if (!entry.success) {
        this.warnOnce('(unreadable entry)', entry.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        continue;
      }
      const { Service, Checks, Node } = entry.data;
      const key = `${Node.Node}/${Service.ID}`;
      seen.add(key);
      const decoded = decodeRecordMeta(Service.Meta);
      if (!decoded.ok) {
        this.warnOnce(key, decoded.error);
        continue;
      }
      if (decoded.record.nodeId !== Service.ID) {
        this.warnOnce(key, `record names node "${decoded.record.nodeId}" but the service id is "${Service.ID}"`);
        continue;
      }
      this.warned.delete(key);
      const checks = Checks ?? [];
      const pingCheck = checks.find((c) => c.CheckID.startsWith(PING_CHECK_PREFIX) && c.ServiceID === Service.ID) ?? checks.find((c) => c.Type === 'ttl');
      const ping = parsePingOutput(pingCheck?.Output);
      nodes.push({
        record: decoded.record,
        ...(ping ? { ping } : {}),
        health: worstHealth(checks),
        // Consul keeps no heartbeat time; the ping carries the agent's own clock.
        lastHeartbeatAt: ping?.at ?? 0,
      });
    }
    for (const key of this.warned.keys()) if (!seen.has(key) && key !== '(unreadable entry)') this.warned.delete(key);
    return nodes.sort((a, b) => a.record.nodeId.localeCompare(b.record.nodeId));
  }

  private warnOnce(key: string, error: string): void {
    if (this.warned.get(key) === error) return;
    this.warned.set(key, error);
    this.logger.warn({ service: key, error }, 'ignoring malformed Consul registry entry');
  }
}
