import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { REGISTRY_KINDS, type RegistryKind } from '@flotilla/registry';
import { TRACING_SHUTDOWN_TIMEOUT_MS, createLogger, startTracing } from '@flotilla/telemetry';
import type { ServerAffinity } from '@flotilla/protocol';
import { env, intInRange, parseAffinity, parsePort, parsePositiveInt, parseServerSpec, withAffinities } from '../options.js';
import { agentSecurityOf, withAgentSecurityFlags, type AgentSecurityFlags } from '../security/securityFlags.js';
import { natsAuthOf, natsSettingsOf, withNatsFlags, type NatsFlags } from '../security/natsFlags.js';

/** `flotilla agent`: host MCP servers on this node and announce them. */
export function agentCommand(): Command {
  return withAgentSecurityFlags(withNatsFlags(new Command('agent')
    .description('host MCP servers on this node, announce them and report load over NATS')
    .requiredOption('-s, --server <name=module>', 'MCP server module to host (repeatable): a file or package exporting a FastMCP instance or an McpServer factory', parseServerSpec)
    .option('--node-id <id>', 'node id, unique in the fleet', process.env.FLOTILLA_NODE_ID ?? hostname().replace(/[^A-Za-z0-9_-]/g, '-'))
    .option('--nats <url>', 'NATS server URL', env.natsUrl)
    .option('--prefix <prefix>', 'NATS subject prefix', env.prefix)
    .addOption(new Option('--registry <kind>', 'registry backend').choices([...REGISTRY_KINDS]).default(env.registry))
    .option('--host <host>', 'HTTP bind address', '127.0.0.1')
    .option('--port <port>', 'HTTP port (0 = any free)', parsePort, 0)
    .option('--advertise-host <host>', 'host routers use to reach this agent (default: --host)')
    .option('--grpc-port <port>', 'grpc.health.v1 port (0 = any free)', parsePort, 0)
    .option('--capacity <n>', 'concurrent tool calls', parsePositiveInt, 16)
    .option('--max-queue <n>', 'calls waiting beyond capacity before the node answers busy', parsePositiveInt, 64)
    .option('--zone <zone>', 'zone label')
    .option('--drain-grace <ms>', 'how long in-flight calls may finish on drain/SIGTERM', parsePositiveInt, 30_000)
    .option('--max-sessions <n>', 'most MCP sessions open at once, all hosted servers together; more initialize requests get HTTP 503 (-32016 SessionLimit)', parsePositiveInt, 10_000)
    .option('--session-idle-timeout <ms>', 'close a session with no open request, call or task for this long', intInRange(1, 2_147_483_647), 600_000)
    .option('--body-timeout-ms <ms>', 'a request body must arrive within this (slower: 408 and the connection closes)', intInRange(1, 2_147_483_647), 30_000)
    .option('--headers-timeout-ms <ms>', 'request headers must arrive within this', intInRange(1, 2_147_483_647), 10_000)
    .option('--max-connections <n>', 'most open HTTP connections (default: --max-sessions + 1024)', parsePositiveInt)
    .option('--affinity <server=mode>', 'session affinity announced for a hosted server: none (calls spread per call) or sticky (one node per client session); repeatable', parseAffinity, {})
    .action(async (o: {
      server: Array<{ name: string; module: string }>; nodeId: string; nats: string; prefix: string; registry: RegistryKind;
      host: string; port: number; advertiseHost?: string; grpcPort: number; capacity: number; maxQueue: number; zone?: string; drainGrace: number;
      maxSessions: number; sessionIdleTimeout: number; affinity: Record<string, ServerAffinity>;
      bodyTimeoutMs: number; headersTimeoutMs: number; maxConnections?: number;
    } & NatsFlags & AgentSecurityFlags) => {
      const servers = withAffinities(o.server, o.affinity);
      // Settings are checked before anything starts: a missing key or an unreadable file fails at once.
      const nats = natsSettingsOf(o);
      const security = agentSecurityOf(o);
      // Loaded on demand so light commands (nodes, tools) do not pay for the agent's dependencies.
      const { startAgent, installSignalHandlers } = await import('@flotilla/agent');
      const logger = createLogger({ name: 'agent', base: { nodeId: o.nodeId } });
      // Before the agent starts, so its first call already has a tracer; off unless OTEL_* asks for it.
      const tracing = startTracing('flotilla-agent');
      if (tracing.enabled) logger.info({ service: process.env.OTEL_SERVICE_NAME }, 'tracing enabled');
      const flushTraces = (): Promise<void> => tracing.shutdown(TRACING_SHUTDOWN_TIMEOUT_MS).catch((err: unknown) => logger.warn({ err }, 'could not export the last spans'));
      const agent = await startAgent({
        nodeId: o.nodeId,
        servers,
        natsUrl: nats.servers,
        prefix: o.prefix,
        registryKind: o.registry,
        host: o.host,
        port: o.port,
        ...(o.advertiseHost ? { advertiseHost: o.advertiseHost } : {}),
        grpcPort: o.grpcPort,
        capacity: o.capacity,
        maxQueue: o.maxQueue,
        ...(o.zone ? { zone: o.zone } : {}),
        drainGraceMs: o.drainGrace,
        maxSessions: o.maxSessions,
        sessionIdleTimeoutMs: o.sessionIdleTimeout,
        bodyTimeoutMs: o.bodyTimeoutMs,
        headersTimeoutMs: o.headersTimeoutMs,
        ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
        nats: natsAuthOf(nats),
        security,
        logger,
      }).catch(async (err: unknown) => {
        await flushTraces();
        throw err;
      });
      // Every way out (drained after SIGTERM, drain over NATS, second signal) exports the spans still
      // buffered before the process ends: the calls that finished during the drain are in them.
      installSignalHandlers(agent, { exit: (code) => void flushTraces().finally(() => process.exit(code)) });
    })));
}
