import { DEFAULT_SUBJECT_PREFIX, NodeIdSchema } from '@flotilla/protocol';
import { REGISTRY_KINDS, type RegistryKind } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import { resolveNatsSettings, type NatsSettings } from '@flotilla/trust';
import { z } from 'zod';
import { ServerSpecSchema, type ResolvedServerSpec, type ServerSpec } from './mounts/MountSpecs.js';
import type { AgentSecurityOptions } from './security/AgentSecurityOptions.js';

export type { ServerSpec, ModuleServerSpec, StdioServerSpec, RemoteServerSpec, ResolvedServerSpec } from './mounts/MountSpecs.js';

/** Default of {@link AgentOptions.maxSessions}. */
export const DEFAULT_MAX_SESSIONS = 10_000;
/** Default of {@link AgentOptions.sessionIdleTimeoutMs}. */
export const DEFAULT_SESSION_IDLE_TIMEOUT_MS = 600_000;

/** Options of {@link startAgent}. */
export interface AgentOptions {
  nodeId: string;
  /** Servers to serve: modules to host, stdio commands and remote URLs to mount (at least one). */
  servers: ServerSpec[];
  natsUrl: string;
  /** NATS subject prefix, default `flotilla`. */
  prefix?: string;
  /** Registry backend, default `nats-kv`. */
  registryKind?: RegistryKind;
  /** Bind host, default 127.0.0.1. */
  host?: string;
  /** HTTP port, 0 = any free. */
  port?: number;
  /** Host put in the registry record (default: `host`). */
  advertiseHost?: string;
  /** grpc.health.v1 port, 0 = any free. */
  grpcPort?: number;
  /** Max concurrent tool calls (default 16). */
  capacity?: number;
  /** Calls waiting beyond capacity before the node answers busy (default 64). */
  maxQueue?: number;
  zone?: string;
  /** How long in-flight calls may finish on drain, ms (default 30000). */
  drainGraceMs?: number;
  heartbeatIntervalMs?: number;
  staleAfterMs?: number;
  /**
   * Host names accepted in the `Host`/`Origin` headers of MCP requests (DNS-rebinding protection). Default:
   * loopback names, `host` and `advertiseHost`. `['*']` accepts any (only behind a trusted network).
   */
  allowedHosts?: string[];
  /**
   * An MCP session with no open HTTP request (no notification stream either) and no call for this long is
   * closed, ms (default 600000): clients that vanish without ending their session would leak it.
   */
  sessionIdleTimeoutMs?: number;
  /**
   * Most MCP sessions open at once on this agent, all hosted servers together (default 10000). An
   * `initialize` beyond it is refused with HTTP 503 and JSON-RPC error `-32016` SessionLimit.
   */
  maxSessions?: number;
  /**
   * NATS authentication and TLS (user/password, token, nkey seed file, creds file, CA, client certificate);
   * `natsUrl` gives the servers. Not read from the environment here: the CLI does that.
   */
  nats?: Omit<Partial<NatsSettings>, 'servers'>;
  /** Node key, operator keys and mesh keys; each part off when not given (the agent says so at start). */
  security?: AgentSecurityOptions;
  /** Request headers must arrive within this, ms (default 10000). */
  headersTimeoutMs?: number;
  /** A request body must arrive within this, ms (default 30000); a slower one gets 408 and the connection closes. */
  bodyTimeoutMs?: number;
  /** Most open HTTP connections (default: `maxSessions` + 1024, since each upstream session keeps a stream open). */
  maxConnections?: number;
  logger?: Logger;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1', '[::1]'];

/** Options with defaults applied and every value validated. */
export interface ResolvedAgentOptions {
  nodeId: string;
  servers: ResolvedServerSpec[];
  natsUrl: string;
  prefix: string;
  registryKind: RegistryKind;
  host: string;
  port: number;
  advertiseHost: string;
  grpcPort: number;
  capacity: number;
  maxQueue: number;
  zone: string | undefined;
  drainGraceMs: number;
  heartbeatIntervalMs: number;
  staleAfterMs: number;
  /** Lower-cased host names; empty set means any host is accepted. */
  allowedHosts: ReadonlySet<string>;
  sessionIdleTimeoutMs: number;
  maxSessions: number;
  /** NATS settings with the servers and, unless given, this node's own reply-subject prefix. */
  nats: NatsSettings;
  security: AgentSecurityOptions;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  maxConnections: number;
}

const AgentOptionsSchema = z.object({
  nodeId: NodeIdSchema,
  servers: serverListSchema(1),
  natsUrl: z.string().min(1),
  prefix: z.string().min(1).default(DEFAULT_SUBJECT_PREFIX),
  registryKind: z.enum(REGISTRY_KINDS).default('nats-kv'),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
  advertiseHost: z.string().min(1).optional(),
  grpcPort: z.number().int().min(0).max(65535).default(0),
  capacity: z.number().int().positive().default(16),
  maxQueue: z.number().int().nonnegative().default(64),
  zone: z.string().min(1).optional(),
  drainGraceMs: z.number().int().nonnegative().default(30_000),
  heartbeatIntervalMs: z.number().int().positive().default(1000),
  staleAfterMs: z.number().int().positive().default(3000),
  allowedHosts: z.array(z.string().min(1)).optional(),
  sessionIdleTimeoutMs: z.number().int().positive().max(2_147_483_647).default(DEFAULT_SESSION_IDLE_TIMEOUT_MS),
  maxSessions: z.number().int().positive().default(DEFAULT_MAX_SESSIONS),
  headersTimeoutMs: z.number().int().positive().max(2_147_483_647).default(10_000),
  bodyTimeoutMs: z.number().int().positive().max(2_147_483_647).default(30_000),
  maxConnections: z.number().int().positive().optional(),
});

/** A list of server specs with unique names, at least `min` of them. */
export function serverListSchema(min: number) {
  return z
    .array(ServerSpecSchema)
    .min(min, 'host at least one server')
    .superRefine((specs, ctx) => {
      const seen = new Set<string>();
      specs.forEach((s, i) => {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', message: `server name "${s.name}" is used twice`, path: [i, 'name'] });
        seen.add(s.name);
      });
    });
}

/** Validates server specs (e.g. for a live change of the servers); throws an Error naming every invalid field. */
export function resolveServerSpecs(servers: readonly ServerSpec[]): ResolvedServerSpec[] {
  const parsed = serverListSchema(0).safeParse(servers);
  if (!parsed.success) throw new Error(`invalid servers: ${formatIssues(parsed.error.issues, 'servers')}`);
  return parsed.data;
}

/** `path: message` for every issue, `;`-separated; paths read like `servers[1].pool.warm`, under `root` when given. */
export function formatIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>, root = ''): string {
  return issues.map((i) => `${issuePath(i.path, root) || 'options'}: ${i.message}`).join('; ');
}

/** `servers[1].pool.warm` from `['servers', 1, 'pool', 'warm']`, prefixed with `root.` when given. */
export function issuePath(path: readonly PropertyKey[], root = ''): string {
  let out = root;
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  return out;
}

/** Validates options and applies defaults; throws an Error naming every invalid field. */
export function resolveAgentOptions(options: AgentOptions): ResolvedAgentOptions {
  const { logger: _logger, nats, security, ...plain } = options;
  const parsed = AgentOptionsSchema.safeParse(plain);
  if (!parsed.success) {
    throw new Error(`invalid agent options: ${formatIssues(parsed.error.issues)}`);
  }
  const o = parsed.data;
  // A wildcard bind address is no name a client can use: advertise loopback unless told otherwise.
  const wildcard = o.host === '0.0.0.0' || o.host === '::';
  const advertiseHost = o.advertiseHost ?? (wildcard ? '127.0.0.1' : o.host);
  let allowedHosts: Set<string>;
  if (o.allowedHosts?.includes('*')) {
    allowedHosts = new Set();
  } else {
    allowedHosts = new Set([...LOOPBACK_NAMES, advertiseHost, ...(wildcard ? [] : [o.host]), ...(o.allowedHosts ?? [])].map((h) => h.toLowerCase()));
  }
  return {
    nodeId: o.nodeId,
    servers: o.servers,
    natsUrl: o.natsUrl,
    prefix: o.prefix,
    registryKind: o.registryKind,
    host: o.host,
    port: o.port,
    advertiseHost,
    grpcPort: o.grpcPort,
    capacity: o.capacity,
    maxQueue: o.maxQueue,
    zone: o.zone,
    drainGraceMs: o.drainGraceMs,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    staleAfterMs: o.staleAfterMs,
    allowedHosts,
    sessionIdleTimeoutMs: o.sessionIdleTimeoutMs,
    maxSessions: o.maxSessions,
    nats: resolveNatsSettings({ ...nats, servers: o.natsUrl, inboxPrefix: nats?.inboxPrefix ?? `_INBOX_${o.nodeId}` }),
    security: security ?? {},
    headersTimeoutMs: o.headersTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    maxConnections: o.maxConnections ?? o.maxSessions + 1024,
  };
}
