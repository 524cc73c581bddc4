import { ServerAffinitySchema, ServerNameSchema, type ServerAffinity } from '@flotilla/protocol';
import { z } from 'zod';

/**
 * How client sessions use a stdio server (one process is one MCP session):
 * - `shared`: one process for every client session; the agent multiplexes them over its one session,
 *   keeping their request ids and progress tokens apart, and offers only what can be shared (see
 *   docs/mounts.md);
 * - `per-session`: each client session gets a process of its own, from a bounded pool kept warm.
 */
export const MountSessionsSchema = z.enum(['shared', 'per-session']);
export type MountSessions = z.infer<typeof MountSessionsSchema>;

/** Transport of a remote server: Streamable HTTP (the current one) or the legacy HTTP+SSE. */
export const RemoteTransportSchema = z.enum(['streamable-http', 'sse']);
export type RemoteTransport = z.infer<typeof RemoteTransportSchema>;

/** Default of {@link StdioServerSpec.sessions}: measured and argued in docs/mounts.md. */
export const DEFAULT_MOUNT_SESSIONS: MountSessions = 'shared';
/** Defaults of {@link StdioServerSpec.pool} (per-session mounts). */
export const DEFAULT_POOL = { warm: 2, max: 16 } as const;
/** Default of {@link StdioServerSpec.startupTimeoutMs}. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000;
/** Defaults of {@link StdioServerSpec.restart}. */
export const DEFAULT_RESTART = { initialDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 10_000 } as const;
/** Default of {@link RemoteServerSpec.timeoutMs}. */
export const DEFAULT_REMOTE_TIMEOUT_MS = 10_000;

/** A server module the agent imports and hosts in its own process. */
export interface ModuleServerSpec {
  name: string;
  /** A file path (relative to the working directory) or a package specifier like `@flotilla/examples/echo`. */
  module: string;
  /** Export to use; default `default`, then `server`. */
  exportName?: string;
  /**
   * Session affinity announced for this server in the registry record (default `none`): `sticky` asks
   * routers to keep all of one client session's calls to it on one node, for servers with per-session state.
   */
  affinity?: ServerAffinity;
}

/** A stdio MCP server the agent runs as a command and mounts (stderr goes to the agent's log). */
export interface StdioServerSpec {
  name: string;
  command: string;
  args?: string[];
  /** Added to a minimal environment (HOME, PATH, SHELL, TERM, USER, LOGNAME): the agent's own is not passed on. */
  env?: Record<string, string>;
  cwd?: string;
  /** `shared` (default) or `per-session`; see {@link MountSessionsSchema}. */
  sessions?: MountSessions;
  /** Per-session mounts: processes kept started ahead of demand (`warm`) and at most at once (`max`). */
  pool?: { warm?: number; max?: number };
  /** Longest a process may take to answer `initialize`, ms (default 30000). */
  startupTimeoutMs?: number;
  /** Restart backoff: first delay, cap, and how long a process must have run to reset it, ms. */
  restart?: { initialDelayMs?: number; maxDelayMs?: number; stableAfterMs?: number };
  affinity?: ServerAffinity;
}

/** A remote MCP server (Streamable HTTP or legacy SSE) the agent mounts; one remote session per client session. */
export interface RemoteServerSpec {
  name: string;
  url: string;
  /** Default: `sse` when the URL path ends in `/sse`, else `streamable-http`. */
  transport?: RemoteTransport;
  /** Sent with every request (e.g. `Authorization`); values are never logged. */
  headers?: Record<string, string>;
  /** Longest the remote may take to answer the agent's `initialize` and pings, ms (default 10000). */
  timeoutMs?: number;
  affinity?: ServerAffinity;
}

/** One server the agent serves: a module it hosts, or a stdio command or remote URL it mounts. */
export type ServerSpec = ModuleServerSpec | StdioServerSpec | RemoteServerSpec;

/** A module server with defaults applied. */
export interface ResolvedModuleSpec extends ModuleServerSpec {
  kind: 'module';
  affinity: ServerAffinity;
}

/** A stdio mount with defaults applied. */
export interface ResolvedStdioSpec {
  kind: 'stdio';
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  sessions: MountSessions;
  pool: { warm: number; max: number };
  startupTimeoutMs: number;
  restart: { initialDelayMs: number; maxDelayMs: number; stableAfterMs: number };
  affinity: ServerAffinity;
}

/** A remote mount with defaults applied. */
export interface ResolvedRemoteSpec {
  kind: 'remote';
  name: string;
  url: string;
  transport: RemoteTransport;
  headers: Record<string, string>;
  timeoutMs: number;
  affinity: ServerAffinity;
}

/** Any server spec with defaults applied and its kind made explicit. */
export type ResolvedServerSpec = ResolvedModuleSpec | ResolvedStdioSpec | ResolvedRemoteSpec;

const positiveMs = z.number().int().positive().max(2_147_483_647);

const ModuleSpecSchema = z.strictObject({
  name: ServerNameSchema,
  module: z.string().min(1, 'module must not be empty'),
  exportName: z.string().min(1).optional(),
  affinity: ServerAffinitySchema.optional(),
});

const StdioSpecSchema = z
  .strictObject({
    name: ServerNameSchema,
    command: z.string().min(1, 'command must not be empty'),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().min(1).optional(),
    sessions: MountSessionsSchema.default(DEFAULT_MOUNT_SESSIONS),
    pool: z
      .strictObject({ warm: z.number().int().min(0).max(256).default(DEFAULT_POOL.warm), max: z.number().int().min(1).max(1024).default(DEFAULT_POOL.max) })
      .default({ warm: DEFAULT_POOL.warm, max: DEFAULT_POOL.max }),
    startupTimeoutMs: positiveMs.default(DEFAULT_STARTUP_TIMEOUT_MS),
    restart: z
      .strictObject({
        initialDelayMs: positiveMs.default(DEFAULT_RESTART.initialDelayMs),
        maxDelayMs: positiveMs.default(DEFAULT_RESTART.maxDelayMs),
        stableAfterMs: positiveMs.default(DEFAULT_RESTART.stableAfterMs),
      })
      .default({ ...DEFAULT_RESTART }),
    affinity: ServerAffinitySchema.default('none'),
  })
  .refine((s) => s.pool.warm <= s.pool.max, { message: 'pool.warm must not be larger than pool.max', path: ['pool', 'warm'] })
  .refine((s) => s.restart.initialDelayMs <= s.restart.maxDelayMs, { message: 'restart.initialDelayMs must not be larger than restart.maxDelayMs', path: ['restart', 'initialDelayMs'] });

const RemoteSpecSchema = z.strictObject({
  name: ServerNameSchema,
  url: z.url({ protocol: /^https?$/, error: 'url must be an http:// or https:// URL' }),
  transport: RemoteTransportSchema.optional(),
  headers: z.record(z.string().min(1), z.string()).default({}),
  timeoutMs: positiveMs.default(DEFAULT_REMOTE_TIMEOUT_MS),
  affinity: ServerAffinitySchema.default('none'),
});

/** The transport a remote URL implies when none is given: `/sse` at the end of the path means legacy SSE. */
export function inferRemoteTransport(url: string): RemoteTransport {
  return /\/sse\/?$/.test(new URL(url).pathname) ? 'sse' : 'streamable-http';
}

/**
 * One server spec, validated, with its kind told by the one of `module`, `command` or `url` it has. Error
 * messages name the field (`pool.warm: ...`).
 */
export const ServerSpecSchema = z.unknown().transform((raw, ctx): ResolvedServerSpec => {
  const keys = typeof raw === 'object' && raw !== null ? Object.keys(raw) : [];
  const kinds = (['module', 'command', 'url'] as const).filter((k) => keys.includes(k));
  if (kinds.length !== 1) {
    ctx.addIssue({ code: 'custom', message: kinds.length === 0 ? 'give one of module (a server module), command (a stdio server) or url (a remote server)' : `give only one of ${kinds.join(', ')}` });
    return z.NEVER;
  }
  const schema = kinds[0] === 'module' ? ModuleSpecSchema : kinds[0] === 'command' ? StdioSpecSchema : RemoteSpecSchema;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  }
  const d = parsed.data;
  if ('module' in d) return { kind: 'module', name: d.name, module: d.module, ...(d.exportName ? { exportName: d.exportName } : {}), affinity: d.affinity ?? 'none' };
  if ('command' in d) return { kind: 'stdio', ...d, cwd: d.cwd };
  return { kind: 'remote', ...d, transport: d.transport ?? inferRemoteTransport(d.url) };
});

/** Whether a resolved spec is a mount (stdio or remote) rather than a hosted module. */
export function isMount(spec: ResolvedServerSpec): spec is ResolvedStdioSpec | ResolvedRemoteSpec {
  return spec.kind !== 'module';
}
