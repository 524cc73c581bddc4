import { Command, Option } from 'commander';
import { REGISTRY_KINDS, type RegistryKind } from '@flotilla/registry';
import { createLogger } from '@flotilla/telemetry';
import { env, parsePort, parsePositiveInt } from '../options.js';

const STRATEGIES = ['least-outstanding', 'round-robin'] as const;

/** `flotilla router`: the one MCP endpoint clients call. */
export function routerCommand(): Command {
  return new Command('router')
    .description('serve the merged MCP endpoint at /mcp and spread calls over the nodes')
    .option('--nats <url>', 'NATS server URL', env.natsUrl)
    .option('--prefix <prefix>', 'NATS subject prefix', env.prefix)
    .addOption(new Option('--registry <kind>', 'registry backend').choices([...REGISTRY_KINDS]).default(env.registry))
    .option('--host <host>', 'bind address', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free)', parsePort, 8080)
    .addOption(new Option('--strategy <name>', 'balancing strategy').choices([...STRATEGIES]).default('least-outstanding'))
    .option('--max-body <bytes>', 'largest request body accepted', parsePositiveInt, 4 * 1024 * 1024)
    .option('--per-node-concurrency <n>', 'calls in flight per node before the router queues', parsePositiveInt, 64)
    .option('--allowed-host <host>', 'Host header to accept (repeatable; default loopback names)', (v: string, p: string[] = []) => [...p, v])
    .option('--allowed-origin <origin>', 'Origin to accept (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .action(async (o: {
      nats: string; prefix: string; registry: RegistryKind; host: string; port: number; strategy: (typeof STRATEGIES)[number];
      maxBody: number; perNodeConcurrency: number; allowedHost?: string[]; allowedOrigin?: string[];
    }) => {
      const { startRouter } = await import('@flotilla/router');
      const logger = createLogger({ name: 'router' });
      const router = await startRouter({
        natsUrl: o.nats,
        prefix: o.prefix,
        registryKind: o.registry,
        host: o.host,
        port: o.port,
        strategy: o.strategy,
        maxBodyBytes: o.maxBody,
        perNodeConcurrency: o.perNodeConcurrency,
        ...(o.allowedHost ? { allowedHosts: o.allowedHost } : {}),
        ...(o.allowedOrigin ? { allowedOrigins: o.allowedOrigin } : {}),
        logger,
      });
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'router stopping');
        router.stop().then(() => process.exit(0), (err: unknown) => { logger.error({ err }, 'router stop failed'); process.exit(1); });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
