import { resolve } from 'node:path';
import { issuePath } from '@flotilla/agent';
import { REGISTRY_KINDS } from '@flotilla/registry';
import { z } from 'zod';
import { ConfigProblemsError } from './ConfigProblems.js';
import { NATS_FILE_OPTIONS } from './natsFileOptions.js';
import { readConfigFile } from './readConfigFile.js';

const MAX_TIMER_MS = 2_147_483_647;
const positive = z.number().int().positive();
const ms = z.number().int().min(1).max(MAX_TIMER_MS);

/** The router's balancing strategies (`--strategy`). */
export const STRATEGIES = ['progress-aware', 'p2c-ewma', 'least-outstanding', 'round-robin'] as const;

/** A router config file: every option of `flotilla router` by its long name in camelCase. */
export const RouterConfigFileSchema = z.strictObject({
  $schema: z.string().optional(),
  nats: z.string().min(1).optional(),
  prefix: z.string().min(1).optional(),
  registry: z.enum(REGISTRY_KINDS).optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  strategy: z.enum(STRATEGIES).optional(),
  maxBody: positive.optional(),
  perNodeConcurrency: positive.optional(),
  maxAttempts: z.number().int().min(1).max(10).optional(),
  retryWindowMs: ms.optional(),
  hedgeReadOnly: z.boolean().optional(),
  callTimeoutMs: ms.optional(),
  sessionIdleTimeoutMs: ms.optional(),
  maxClientSessions: positive.optional(),
  maxUpstreamSessions: positive.optional(),
  upstreamIdleTimeoutMs: ms.optional(),
  sessionKeyFile: z.string().min(1).optional(),
  reconnectGraceMs: z.number().int().min(0).max(MAX_TIMER_MS).optional(),
  maxToolSchemaBytes: z.number().int().min(1024).max(64 * 1024 * 1024).optional(),
  maxToolSchemaDepth: z.number().int().min(4).max(1000).optional(),
  argumentCheckBudgetMs: z.number().int().min(1).max(60_000).optional(),
  allowedHost: z.array(z.string().min(1)).optional(),
  allowedOrigin: z.array(z.string().min(1)).optional(),
  ...NATS_FILE_OPTIONS,
  // Keys (securityFlags.ts): public keys and the files that hold seeds, never the seeds themselves.
  trustedIssuer: z.array(z.string().min(1)).optional(),
  trustedIssuersFile: z.string().min(1).optional(),
  allowUnsignedNodes: z.boolean().optional(),
  meshSeedFile: z.string().min(1).optional(),
  insecure: z.boolean().optional(),
  // The front door and limits (frontDoorOptions.ts); secrets stay in the files these name.
  authIssuer: z.url().optional(),
  authAudience: z.array(z.string().min(1)).optional(),
  authJwksUrl: z.url().optional(),
  authRolesClaim: z.string().min(1).optional(),
  apiKeysFile: z.string().min(1).optional(),
  policyFile: z.string().min(1).optional(),
  resourceUrl: z.url().optional(),
  authScope: z.array(z.string().min(1)).optional(),
  maxConcurrentCalls: positive.optional(),
  clientConcurrency: positive.optional(),
  sessionConcurrency: positive.optional(),
  clientQueue: positive.optional(),
  clientRate: z.number().min(0).optional(),
  sessionRate: z.number().min(0).optional(),
  maxSessionsPerIdentity: positive.optional(),
  requestTimeoutMs: ms.optional(),
  headersTimeoutMs: ms.optional(),
  maxConnections: positive.optional(),
  streamIdleTimeoutMs: ms.optional(),
});

/**
 * Reads and checks a router config file; throws a `ConfigFileError` (unreadable, bad syntax) or a
 * {@link ConfigProblemsError} listing every invalid field.
 */
export async function loadRouterConfig(path: string): Promise<{ file: string; options: Record<string, unknown> }> {
  const file = resolve(path);
  const parsed = RouterConfigFileSchema.safeParse(await readConfigFile(file));
  if (!parsed.success) {
    const known = Object.keys(RouterConfigFileSchema.shape).filter((k) => k !== '$schema').join(', ');
    throw new ConfigProblemsError(
      file,
      parsed.error.issues.map((i) => ({ path: issuePath(i.path) || '(top level)', message: i.code === 'unrecognized_keys' ? `${i.message}; the options are ${known}` : i.message })),
    );
  }
  const { $schema: _schema, ...options } = parsed.data;
  return { file, options };
}
