import { Command, Option } from 'commander';
import { REGISTRY_KINDS, createRegistry, type RegisteredNode, type RegistryKind } from '@flotilla/registry';
import { createLogger } from '@flotilla/telemetry';
import { connectForCommand } from '../natsConnection.js';
import { env } from '../options.js';
import { natsSettingsOf, withNatsFlags, type NatsFlags } from '../security/natsFlags.js';
import { renderTable } from '../renderTable.js';

/** `flotilla nodes`: the fleet as the registry sees it. */
export function nodesCommand(): Command {
  return withNatsFlags(new Command('nodes')
    .description('list nodes from the configured registry, with health, ping data and hosted servers')
    .option('--nats <url>', 'NATS server URL (nats-kv registry)', env.natsUrl)
    .option('--prefix <prefix>', 'NATS subject prefix', env.prefix)
    .addOption(new Option('--registry <kind>', 'registry backend').choices([...REGISTRY_KINDS]).default(env.registry))
    .option('--json', 'print JSON')
    .action(async (o: { prefix: string; registry: RegistryKind; json?: boolean } & NatsFlags) => {
      const logger = createLogger({ name: 'cli', level: 'warn', destination: process.stderr });
      const nc = o.registry === 'nats-kv' ? await connectForCommand(natsSettingsOf(o)) : undefined;
      const registry = createRegistry({ kind: o.registry, logger, prefix: o.prefix, ...(nc ? { nc } : {}) });
      try {
        const nodes = await registry.list({ includeCritical: true });
        process.stdout.write(o.json ? `${JSON.stringify(nodes, null, 2)}\n` : formatNodes(nodes));
      } finally {
        await registry.close();
        await nc?.close();
      }
    }));
}

/** One row per node: what an operator scans for first. */
export function formatNodes(nodes: RegisteredNode[]): string {
  if (nodes.length === 0) return 'no nodes registered\n';
  const now = Date.now();
  return renderTable(
    ['NODE', 'HEALTH', 'STATE', 'URL', 'SERVERS', 'INFLIGHT', 'QUEUED', 'NATS RTT', 'LOOP LAG', 'UPTIME', 'LAST PING'],
    nodes.map((n) => [
      n.record.nodeId,
      n.health,
      n.record.draining || n.ping?.status === 'draining' ? 'draining' : (n.ping?.status ?? '-'),
      n.record.mcpBaseUrl,
      n.record.servers.map((s) => `${s.name}(${s.toolCount})`).join(','),
      String(n.ping?.inflight ?? '-'),
      String(n.ping?.queued ?? '-'),
      n.ping?.natsRttMs !== undefined ? `${n.ping.natsRttMs.toFixed(1)}ms` : '-',
      n.ping ? `${n.ping.eventLoopLagMs.toFixed(1)}ms` : '-',
      n.ping ? `${Math.round(n.ping.uptimeS)}s` : '-',
      `${((now - n.lastHeartbeatAt) / 1000).toFixed(1)}s ago`,
    ]),
  );
}
