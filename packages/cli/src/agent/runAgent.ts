import type { AgentSecurityOptions, RunningAgent, ServerSpec } from '@flotilla/agent';
import type { ServerAffinity } from '@flotilla/protocol';
import type { RegistryKind } from '@flotilla/registry';
import { createLogger, type Logger } from '@flotilla/telemetry';
import type { Command } from 'commander';
import { processTracing } from '../processTracing.js';
import { loadAgentConfig, type AgentConfig } from '../config/agentConfig.js';
import { ConfigProblemsError } from '../config/ConfigProblems.js';
import { ConfigWatcher } from '../config/ConfigWatcher.js';
import { applyFileValues, optionValues } from '../config/optionSources.js';
import { printConfig, redactServers } from '../config/printConfig.js';
import { natsAuthOf, natsSettingsOf, type NatsFlags } from '../security/natsFlags.js';
import { agentSecurityOf, type AgentSecurityFlags } from '../security/securityFlags.js';
import { agentServers } from './agentServers.js';

/** The options of `flotilla agent` once flags, environment and file are merged. */
interface AgentCliOptions extends NatsFlags, AgentSecurityFlags {
  config?: string;
  printConfig?: boolean;
  server?: Array<{ name: string; module: string }>;
  nodeId: string;
  nats: string;
  prefix: string;
  registry: RegistryKind;
  host: string;
  port: number;
  advertiseHost?: string;
  grpcPort: number;
  capacity: number;
  maxQueue: number;
  zone?: string;
  drainGrace: number;
  maxSessions: number;
  sessionIdleTimeout: number;
  affinity?: Record<string, ServerAffinity>;
  bodyTimeoutMs: number;
  headersTimeoutMs: number;
  maxConnections?: number;
}

/** The order `--print-config` states. */
const PRECEDENCE = 'flags > environment > config file > defaults';

/** Runs `flotilla agent` after commander parsed the command line. */
export async function runAgentCommand(cmd: Command): Promise<void> {
  const control = cmd.opts<Pick<AgentCliOptions, 'config' | 'printConfig'>>();
  const config = control.config ? await loadAgentConfig(control.config, process.env) : undefined;
  if (config) applyFileValues(cmd, config.options);
  const o = cmd.opts<AgentCliOptions>();
  const servers = agentServers(config?.servers ?? [], o.server ?? [], o.affinity ?? {});
  if (control.printConfig) {
    const flagServers = Object.fromEntries((o.server ?? []).map((s) => [s.name, { module: s.module, from: 'flag' }]));
    printConfig({ precedence: PRECEDENCE, configFile: config?.file ?? null, options: optionValues(cmd), servers: { ...redactServers(config?.rawServers ?? {}), ...flagServers } });
    return;
  }
  if (servers.length === 0) {
    throw new Error('no servers to serve: give --server name=module, or mcpServers in a --config file (flotilla agent --help shows a servers.json)');
  }
  // Settings are checked before anything starts: a missing key or an unreadable file fails at once.
  const nats = natsSettingsOf(o);
  const security = agentSecurityOf(o);
  const logger = createLogger({ name: 'agent', base: { nodeId: o.nodeId } });
  const agent = await startAgentProcess(o, { servers, nats, security }, logger);
  if (config) watchConfig({ cmd, agent, config, logger });
}

/** Starts the agent with tracing and signal handling, as the process's one job. */
async function startAgentProcess(
  o: AgentCliOptions,
  resolved: { servers: ServerSpec[]; nats: ReturnType<typeof natsSettingsOf>; security: AgentSecurityOptions },
  logger: Logger,
): Promise<RunningAgent> {
  const { servers, nats, security } = resolved;
  // Loaded on demand so light commands (nodes, tools) do not pay for the agent's dependencies.
  const { startAgent, installSignalHandlers } = await import('@flotilla/agent');
  const flushTraces = processTracing('flotilla-agent', logger);
  const agent = await startAgent({
    nodeId: o.nodeId,
    servers,
    natsUrl: nats.servers,
    nats: natsAuthOf(nats),
    security,
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
    logger,
  }).catch(async (err: unknown) => {
    await flushTraces();
    throw err;
  });
  // Every way out (drained after SIGTERM, drain over NATS, second signal) exports the spans still
  // buffered before the process ends: the calls that finished during the drain are in them.
  installSignalHandlers(agent, { exit: (code) => void flushTraces().finally(() => process.exit(code)) });
  return agent;
}

/** What a reload needs. */
interface ReloadContext {
  cmd: Command;
  agent: RunningAgent;
  config: AgentConfig;
  logger: Logger;
}

/** Reloads the config file whenever it changes, until the agent stops. */
function watchConfig(ctx: ReloadContext): void {
  const watcher = new ConfigWatcher({ file: ctx.config.file, logger: ctx.logger, reload: () => reloadConfig(ctx) });
  watcher.start();
  void ctx.agent.stopped.then(() => watcher.stop());
}

/**
 * Applies the config file again: its servers change live; a file with errors changes nothing (the
 * running servers keep serving) and every problem is logged with its field. Options other than servers
 * take effect on restart only, which is logged.
 */
async function reloadConfig(ctx: ReloadContext): Promise<void> {
  const { cmd, agent, logger } = ctx;
  const file = ctx.config.file;
  let next: AgentConfig;
  try {
    next = await loadAgentConfig(file, process.env);
  } catch (err) {
    const problems = err instanceof ConfigProblemsError ? err.lines : [err instanceof Error ? err.message : String(err)];
    logger.error({ file, problems }, `config file has errors; the running servers are unchanged: ${problems.join('; ')}`);
    return;
  }
  const o = cmd.opts<AgentCliOptions>();
  const affinity = cmd.getOptionValueSource('affinity') === 'cli' ? (o.affinity ?? {}) : ((next.options.affinity as Record<string, ServerAffinity> | undefined) ?? {});
  let servers: ServerSpec[];
  try {
    servers = agentServers(next.servers, o.server ?? [], affinity);
  } catch (err) {
    logger.error({ file, problems: [err instanceof Error ? err.message : String(err)] }, 'config file has errors; the running servers are unchanged');
    return;
  }
  const restartOnly = changedOptions(cmd, ctx.config.options, next.options);
  if (restartOnly.length > 0) logger.warn({ file, options: restartOnly }, 'config file changes options that take effect when the agent restarts');
  try {
    const summary = await agent.applyServers(servers);
    logger.info({ file, ...summary }, 'config file applied');
  } catch (err) {
    logger.error({ file, err }, 'could not apply the config file; the running servers are unchanged');
  }
}

/** Options (not servers, not affinity) the file now sets differently, where the file is what sets them. */
function changedOptions(cmd: Command, before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  keys.delete('affinity');
  return [...keys].filter((k) => {
    const source = cmd.getOptionValueSource(k);
    return source !== 'cli' && source !== 'env' && JSON.stringify(before[k]) !== JSON.stringify(after[k]);
  });
}
