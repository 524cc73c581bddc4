import { readFile } from 'node:fs/promises';
import { createLogger } from '@flotilla/telemetry';
import type { RegistryKind } from '@flotilla/registry';
import type { Command } from 'commander';
import { processTracing } from '../processTracing.js';
import { applyFileValues, optionValues } from '../config/optionSources.js';
import { printConfig } from '../config/printConfig.js';
import { loadRouterConfig, type STRATEGIES } from '../config/routerConfig.js';
import { frontDoorRouterOptions, type FrontDoorCliOptions } from '../frontDoorOptions.js';
import { natsAuthOf, natsSettingsOf, type NatsFlags } from '../security/natsFlags.js';
import { routerSecurityOf, type RouterSecurityFlags } from '../security/securityFlags.js';

/** The options of `flotilla router` once flags, environment and file are merged. */
interface RouterCliOptions extends FrontDoorCliOptions, NatsFlags, RouterSecurityFlags {
  nats: string; prefix: string; registry: RegistryKind; host: string; port: number; strategy: (typeof STRATEGIES)[number];
  maxBody: number; perNodeConcurrency?: number; maxAttempts: number; retryWindowMs: number; hedgeReadOnly?: boolean; callTimeoutMs: number;
  sessionIdleTimeoutMs: number; maxClientSessions: number; maxUpstreamSessions: number; upstreamIdleTimeoutMs: number;
  sessionKeyFile?: string; reconnectGraceMs: number; maxToolSchemaBytes: number; maxToolSchemaDepth: number; argumentCheckBudgetMs: number;
  allowedHost?: string[]; allowedOrigin?: string[];
}

/** Runs `flotilla router` after commander parsed the command line: file options applied, then the router started. */
export async function runRouterCommand(command: Command): Promise<void> {
  const control = command.opts<{ config?: string; printConfig?: boolean }>();
  const config = control.config ? await loadRouterConfig(control.config) : undefined;
  if (config) applyFileValues(command, config.options);
  if (control.printConfig) {
    printConfig({ precedence: 'flags > environment > config file > defaults', configFile: config?.file ?? null, options: optionValues(command) });
    return;
  }
  const o = command.opts<RouterCliOptions>();
  // Settings are checked before anything starts: a missing key or an unreadable file fails at once.
  const nats = natsSettingsOf(o);
  const security = routerSecurityOf(o);
  const { startRouter } = await import('@flotilla/router');
  const logger = createLogger({ name: 'router' });
  const flushTraces = processTracing('flotilla-router', logger);
  // The key itself is a secret: it comes from a file or FLOTILLA_SESSION_KEY, never from a flag or the config file.
  const sessionKey = o.sessionKeyFile ? (await readFile(o.sessionKeyFile, 'utf8')).trim() : process.env.FLOTILLA_SESSION_KEY?.trim();
  const router = await startRouter({
    natsUrl: nats.servers,
    nats: natsAuthOf(nats),
    security,
    prefix: o.prefix,
    registryKind: o.registry,
    host: o.host,
    port: o.port,
    strategy: o.strategy,
    maxBodyBytes: o.maxBody,
    ...(o.perNodeConcurrency !== undefined ? { perNodeConcurrency: o.perNodeConcurrency } : {}),
    maxAttempts: o.maxAttempts,
    retryWindowMs: o.retryWindowMs,
    hedgeReadOnly: o.hedgeReadOnly === true,
    callTimeoutMs: o.callTimeoutMs,
    sessionIdleTimeoutMs: o.sessionIdleTimeoutMs,
    maxClientSessions: o.maxClientSessions,
    maxUpstreamSessions: o.maxUpstreamSessions,
    upstreamIdleTimeoutMs: o.upstreamIdleTimeoutMs,
    ...(sessionKey ? { sessionKey } : {}),
    reconnectGraceMs: o.reconnectGraceMs,
    maxToolSchemaBytes: o.maxToolSchemaBytes,
    maxToolSchemaDepth: o.maxToolSchemaDepth,
    argumentCheckBudgetMs: o.argumentCheckBudgetMs,
    ...(o.allowedHost ? { allowedHosts: o.allowedHost } : {}),
    ...(o.allowedOrigin ? { allowedOrigins: o.allowedOrigin } : {}),
    ...frontDoorRouterOptions(o),
    logger,
  }).catch(async (err: unknown) => {
    await flushTraces();
    throw err;
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'router stopping');
    // Spans are exported after the router stopped, so those of the calls it finished on the way are in.
    void router
      .stop()
      .then(
        () => 0,
        (err: unknown) => {
          logger.error({ err }, 'router stop failed');
          return 1;
        },
      )
      .then(async (code) => {
        await flushTraces();
        process.exit(code);
      });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
