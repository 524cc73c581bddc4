import { resolve } from 'node:path';
import { serverSpecsFromMcpServers, issuePath, type ServerSpec } from '@flotilla/agent';
import { NodeIdSchema, ServerAffinitySchema, ServerNameSchema } from '@flotilla/protocol';
import { REGISTRY_KINDS } from '@flotilla/registry';
import { z } from 'zod';
import { ConfigProblemsError } from './ConfigProblems.js';
import { NATS_FILE_OPTIONS } from './natsFileOptions.js';
import { readConfigFile } from './readConfigFile.js';

const MAX_TIMER_MS = 2_147_483_647;
const port = z.number().int().min(0).max(65535);
const positive = z.number().int().positive();

/**
 * An agent config file: every option of `flotilla agent` by its long name in camelCase (`maxSessions`
 * for `--max-sessions`), and `mcpServers`, the map Claude Desktop, Cursor and FastMCP read. A file with
 * only `mcpServers` (a desktop client's `servers.json`) is valid.
 */
export const AgentConfigFileSchema = z.strictObject({
  $schema: z.string().optional(),
  nodeId: NodeIdSchema.optional(),
  nats: z.string().min(1).optional(),
  prefix: z.string().min(1).optional(),
  registry: z.enum(REGISTRY_KINDS).optional(),
  host: z.string().min(1).optional(),
  port: port.optional(),
  advertiseHost: z.string().min(1).optional(),
  grpcPort: port.optional(),
  capacity: positive.optional(),
  maxQueue: positive.optional(),
  zone: z.string().min(1).optional(),
  drainGrace: positive.optional(),
  maxSessions: positive.optional(),
  sessionIdleTimeout: z.number().int().min(1).max(MAX_TIMER_MS).optional(),
  affinity: z.record(ServerNameSchema, ServerAffinitySchema).optional(),
  bodyTimeoutMs: z.number().int().min(1).max(MAX_TIMER_MS).optional(),
  headersTimeoutMs: z.number().int().min(1).max(MAX_TIMER_MS).optional(),
  maxConnections: positive.optional(),
  ...NATS_FILE_OPTIONS,
  // Keys (securityFlags.ts): public keys and the files that hold seeds and credentials, never a seed.
  nodeSeedFile: z.string().min(1).optional(),
  nodeCredentialFile: z.string().min(1).optional(),
  operatorKey: z.array(z.string().min(1)).optional(),
  operatorKeysFile: z.string().min(1).optional(),
  meshKey: z.array(z.string().min(1)).optional(),
  meshKeysFile: z.string().min(1).optional(),
  openMetrics: z.boolean().optional(),
  insecure: z.boolean().optional(),
  mcpServers: z.unknown().optional(),
});

/** An agent config file, read and checked. */
export interface AgentConfig {
  /** Absolute path of the file. */
  file: string;
  /** The options it sets (not `mcpServers`). */
  options: Record<string, unknown>;
  /** Its servers, `${VAR}` references expanded. */
  servers: ServerSpec[];
  /** Its `mcpServers` as written (for `--print-config`, which redacts secrets). */
  rawServers: Record<string, unknown>;
}

/**
 * Reads and checks an agent config file; throws a `ConfigFileError` (unreadable, bad syntax) or a
 * {@link ConfigProblemsError} listing every invalid field.
 */
export async function loadAgentConfig(path: string, env: NodeJS.ProcessEnv): Promise<AgentConfig> {
  const file = resolve(path);
  const raw = await readConfigFile(file);
  const parsed = AgentConfigFileSchema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => ({ path: issuePath(i.path) || '(top level)', message: unknownKeyHint(i) }));
  // mcpServers is checked even when an option is wrong, so one run names every problem.
  const declared = isRecord(raw) ? raw.mcpServers : undefined;
  const rawServers = isRecord(declared) ? declared : {};
  let servers: ServerSpec[] = [];
  if (declared !== undefined) {
    const r = serverSpecsFromMcpServers(declared, env);
    if (r.ok) servers = r.specs;
    else problems.push(...r.issues);
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigProblemsError(file, problems);
  const { mcpServers: _servers, $schema: _schema, ...options } = parsed.data;
  return { file, options, servers, rawServers };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** zod's message, with the known option names added for a key it does not know (a typo, usually). */
function unknownKeyHint(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'unrecognized_keys') return issue.message;
  return `${issue.message}; the options are ${Object.keys(AgentConfigFileSchema.shape).filter((k) => k !== '$schema').join(', ')}`;
}
