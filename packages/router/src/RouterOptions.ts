import { DEFAULT_ARGUMENT_CHECK_LIMITS } from './front/validation/OffLoopArgumentValidator.js';
import { DEFAULT_TOOL_SCHEMA_LIMITS } from './upstream/ToolSchemaGuard.js';
import { DEFAULT_SUBJECT_PREFIX } from '@flotilla/protocol';
import { DEFAULT_REGISTRY_TIMINGS, REGISTRY_KINDS, type RegistryKind } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import type { NatsSettings } from '@flotilla/trust';
import { z } from 'zod';
import type { FrontDoorOptions } from './auth/FrontDoorOptions.js';
import { LimitsOptionsSchema, type LimitsOptions } from './limits/LimitsOptions.js';
import type { RouterSecurityOptions } from './security/RouterSecurityOptions.js';

/**
 * Replica-picking strategies the router offers: `progress-aware` (P2C on expected completion time from
 * the nodes' load and progress reports, the default), `p2c-ewma` (Finagle's P2C over peak EWMA latency ×
 * outstanding, measured by the router), `least-outstanding` and `round-robin` (baselines).
 */
export const BALANCER_STRATEGIES = ['progress-aware', 'p2c-ewma', 'least-outstanding', 'round-robin'] as const;
export type BalancerStrategy = (typeof BALANCER_STRATEGIES)[number];

/** How to start a router; see {@link startRouter}. */
export interface RouterOptions {
  /** NATS server(s) carrying the registry (nats-kv backend) and load/progress reports. */
  natsUrl: string;
  /** Subject prefix, default `flotilla`. */
  prefix?: string;
  /** Registry backend, default `nats-kv`. */
  registryKind?: RegistryKind;
  /** Listen address, default `127.0.0.1`. */
  host?: string;
  /** Listen port, default 8080; 0 picks a free port. */
  port?: number;
  /** Largest accepted POST body, default 4 MiB; bigger bodies get 413. */
  maxBodyBytes?: number;
  /** Host header values accepted on `/mcp` and `/api` (DNS-rebinding protection); default: loopback names with the port. */
  allowedHosts?: string[];
  /** Origin header values accepted on `/mcp` and `/api`; requests without Origin are always accepted. Default: loopback origins with the port. */
  allowedOrigins?: string[];
  /** How a replica is picked, default `progress-aware`. */
  strategy?: BalancerStrategy;
  /** Most nodes tried for one call (retries, failovers and hedges together), default 3. */
  maxAttempts?: number;
  /** No retry or failover starts later than this after a call's first failed attempt, ms (default 30000). */
  retryWindowMs?: number;
  /**
   * Hedge calls of `readOnlyHint` tools: when the first copy runs longer than that tool's p95 on its node,
   * send a second copy to another replica; the first answer wins and the other is cancelled. Default off.
   */
  hedgeReadOnly?: boolean;
  /** Calls the router runs at once on one node; the rest wait in the router's per-node queue. Default: twice the node's announced capacity, at least 16. */
  perNodeConcurrency?: number;
  /** A node whose heartbeat is older than this leaves the catalog, ms (default 3000). */
  staleAfterMs?: number;
  /** Heartbeat interval agents use, ms (default 1000). */
  heartbeatIntervalMs?: number;
  /** Longest time a forwarded call may go without a response or a progress notification, ms (default 10 min). */
  callTimeoutMs?: number;
  /** A client session with no HTTP activity for this long is closed, ms (default 30 min). */
  sessionIdleTimeoutMs?: number;
  /** Most client sessions at once; `initialize` past it gets HTTP 503 (default 10,000). */
  maxClientSessions?: number;
  /**
   * Most upstream sessions (one per client session × node × server it used) the router holds; past it the
   * least recently used idle one is closed, and when none is idle the call is refused (default 50,000).
   */
  maxUpstreamSessions?: number;
  /**
   * An upstream session no request used for this long is closed, unless its client keeps state there (a
   * subscription, a task, a sticky binding), ms (default 10 min). The client's next call there opens a new one.
   */
  upstreamIdleTimeoutMs?: number;
  /** NATS authentication and TLS; `natsUrl` gives the servers. */
  nats?: Omit<Partial<NatsSettings>, 'servers'>;
  /** Which node records to trust, and the mesh key for agents; see {@link RouterSecurityOptions}. */
  security?: RouterSecurityOptions;
  /**
   * The mesh's session key (32 bytes, base64): seals client session ids and stream resume tickets. Every
   * router replica behind one load balancer needs the same key to take up each other's sessions. Without
   * one, a random key is made at start: sessions then live only as long as this process.
   */
  sessionKey?: string;
  /** How long a client whose stream broke may take to resume it before its calls on it are cancelled, ms (default 3000). */
  reconnectGraceMs?: number;
  /**
   * The front door: OAuth bearer JWTs from an issuer and/or API keys, and an access policy (see
   * docs/security.md#front-door). Without `auth.jwt` or `auth.apiKeysFile` the router runs open, which it
   * does only on a loopback address unless `insecure` is set.
   */
  auth?: FrontDoorOptions;
  /** Run open (no authentication) on a non-loopback address. Never in production. */
  insecure?: boolean;
  /** Fairness and limits: per-client and per-session rates and concurrency, the fair queue, HTTP timeouts. */
  limits?: LimitsOptions;
  /** Largest tool definition a server may declare, bytes of JSON (default 128 KiB); larger tools are refused. */
  maxToolSchemaBytes?: number;
  /** Deepest nesting of a tool's input or output schema (default 32); deeper tools are refused. */
  maxToolSchemaDepth?: number;
  /** Longest the router may spend checking one call's arguments (off its event loop), ms (default 250); past it the call goes on unchecked. */
  argumentCheckBudgetMs?: number;
  logger?: Logger;
}

/** A started router. */
export interface RunningRouter {
  /** The MCP endpoint, e.g. `http://127.0.0.1:8080/mcp`. */
  readonly url: string;
  /** The port actually bound (useful with `port: 0`). */
  readonly port: number;
  /** Closes client sessions, upstream sessions, the NATS connection and the HTTP server. */
  stop(): Promise<void>;
}

const RouterOptionsSchema = z.object({
  natsUrl: z.string().min(1, 'natsUrl is required'),
  prefix: z.string().min(1).default(DEFAULT_SUBJECT_PREFIX),
  registryKind: z.enum(REGISTRY_KINDS).default('nats-kv'),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
  allowedHosts: z.array(z.string().min(1)).optional(),
  allowedOrigins: z.array(z.string().min(1)).optional(),
  strategy: z.enum(BALANCER_STRATEGIES).default('progress-aware'),
  maxAttempts: z.number().int().min(1).max(10).default(3),
  retryWindowMs: z.number().int().positive().default(30_000),
  hedgeReadOnly: z.boolean().default(false),
  perNodeConcurrency: z.number().int().positive().optional(),
  staleAfterMs: z.number().int().positive().default(DEFAULT_REGISTRY_TIMINGS.staleAfterMs),
  heartbeatIntervalMs: z.number().int().positive().default(DEFAULT_REGISTRY_TIMINGS.heartbeatIntervalMs),
  callTimeoutMs: z.number().int().positive().default(10 * 60_000),
  sessionIdleTimeoutMs: z.number().int().positive().default(30 * 60_000),
  maxClientSessions: z.number().int().positive().default(10_000),
  maxUpstreamSessions: z.number().int().positive().default(50_000),
  upstreamIdleTimeoutMs: z.number().int().positive().default(10 * 60_000),
  sessionKey: z
    .string()
    .refine((k) => Buffer.from(k.trim(), 'base64').length === 32, 'must be 32 bytes, base64 (e.g. `openssl rand -base64 32`)')
    .optional(),
  reconnectGraceMs: z.number().int().min(0).default(3000),
  auth: z.custom<FrontDoorOptions>((v) => typeof v === 'object' && v !== null, 'must be an object').optional(),
  insecure: z.boolean().default(false),
  limits: LimitsOptionsSchema.default(LimitsOptionsSchema.parse({})),
  maxToolSchemaBytes: z.number().int().min(1024).default(DEFAULT_TOOL_SCHEMA_LIMITS.maxBytes),
  maxToolSchemaDepth: z.number().int().min(4).max(1000).default(DEFAULT_TOOL_SCHEMA_LIMITS.maxDepth),
  argumentCheckBudgetMs: z.number().int().min(1).max(60_000).default(DEFAULT_ARGUMENT_CHECK_LIMITS.budgetMs),
});

/** Router options with every default applied. */
export type ResolvedRouterOptions = z.output<typeof RouterOptionsSchema> & Pick<RouterOptions, 'logger' | 'nats' | 'security'>;

/** Validates options (throwing a message that names each wrong field) and applies defaults. */
export function resolveRouterOptions(options: RouterOptions): ResolvedRouterOptions {
  const { logger, nats, security, ...rest } = options;
  const parsed = RouterOptionsSchema.safeParse(rest);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
    throw new Error(`invalid router options: ${detail}`);
  }
  return { ...parsed.data, ...(logger ? { logger } : {}), ...(nats ? { nats } : {}), ...(security ? { security } : {}) };
}
