import { z } from 'zod';
import type { BreakerState } from '../../endpoint/NodeGuard.js';
import type { AttemptResult, CallOutcome } from '../../forwarding/CallObserver.js';

/**
 * The JSON the dashboard draws (`GET /api/v1/dashboard`, and every `data:` of `GET /dashboard/events`).
 * The schemas are the contract between the router and the page; the router validates what it sends in
 * tests, and other tools may parse it with these schemas.
 */

/** Version of the snapshot shape; bumped on an incompatible change. */
export const DASHBOARD_SNAPSHOT_VERSION = 1;

export const CALL_OUTCOMES = ['ok', 'tool_error', 'error', 'no_replica', 'invalid_request', 'cancelled', 'deadline_exceeded'] as const satisfies readonly CallOutcome[];
export const ATTEMPT_RESULTS = ['ok', 'tool_error', 'error', 'busy', 'draining', 'refused', 'breaker_open', 'node_lost', 'timeout', 'cancelled'] as const satisfies readonly AttemptResult[];
export const BREAKER_STATES = ['closed', 'half-open', 'open'] as const satisfies readonly BreakerState[];

// The lists above must name every value of the router's own types (a new outcome must reach the page).
type Exhaustive<Listed, All> = [All] extends [Listed] ? true : never;
const outcomesListed: Exhaustive<(typeof CALL_OUTCOMES)[number], CallOutcome> = true;
const resultsListed: Exhaustive<(typeof ATTEMPT_RESULTS)[number], AttemptResult> = true;
const breakerListed: Exhaustive<(typeof BREAKER_STATES)[number], BreakerState> = true;
void [outcomesListed, resultsListed, breakerListed];

/**
 * A node's status at a glance, worst first: `unhealthy` (cannot take calls: registry critical, breaker
 * open, no working session), `gone` (left the mesh unexpectedly: heartbeats stopped), `degraded` (takes
 * calls but something is off: late reports, half-open breaker, a server down, high loop lag), `draining`
 * (finishing its calls, takes no new ones), `left` (deregistered after draining), `healthy`.
 */
export const NODE_STATUSES = ['unhealthy', 'gone', 'degraded', 'draining', 'left', 'healthy'] as const;
export const NodeStatusSchema = z.enum(NODE_STATUSES);
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

const count = z.number().int().nonnegative();
const seconds = z.number().nonnegative();

export const DashboardNodeSchema = z.object({
  nodeId: z.string(),
  status: NodeStatusSchema,
  /** Why the status is not `healthy`, in words (empty when healthy). */
  reasons: z.array(z.string()),
  /** Health as the registry reports it (Consul check state, or derived from heartbeat age on NATS KV). */
  registryHealth: z.enum(['passing', 'warning', 'critical']),
  zone: z.string().nullable(),
  version: z.string(),
  draining: z.boolean(),
  /** At least one hosted server has a working upstream session from this router. */
  connected: z.boolean(),
  breaker: z.enum(BREAKER_STATES),
  servers: z.array(z.object({ name: z.string(), connected: z.boolean(), toolCount: count })),
  /** Ping data the node sent with its last heartbeat (read from the registry; null until read). */
  ping: z
    .object({
      status: z.enum(['ok', 'degraded', 'draining']),
      natsRttMs: z.number().nonnegative().nullable(),
      eventLoopLagMs: z.number().nonnegative(),
      uptimeS: seconds,
      inflight: count,
      queued: count,
    })
    .nullable(),
  /** The node's last NATS load report. */
  load: z
    .object({ inflight: count, queued: count, capacity: count, eventLoopLagMs: z.number().nonnegative(), ageS: seconds })
    .nullable(),
  /** This router's own view: calls it placed there and has not got an answer for, running and queued here. */
  router: z.object({ outstanding: count, running: count, queued: count }),
  /** Age of the node's last heartbeat in the registry; null until read. */
  heartbeatAgeS: seconds.nullable(),
  /** Epoch ms when the node left the registry view (`gone`/`left` rows only). */
  leftAt: z.number().nullable(),
});
export type DashboardNode = z.infer<typeof DashboardNodeSchema>;

export const DashboardToolSchema = z.object({
  name: z.string(),
  server: z.string(),
  /** Read-only or idempotent: retried elsewhere even after a node accepted it. */
  retryable: z.boolean(),
  /** Nodes offering the tool: whether a call could be placed there now, and the node's breaker. */
  replicas: z.array(z.object({ nodeId: z.string(), available: z.boolean(), breaker: z.enum(BREAKER_STATES) })),
  /** Calls answered within the rate window. */
  calls: count,
  /** Calls per second over the rate window. */
  callRate: z.number().nonnegative(),
  /** Calls that failed in the mesh (not `ok`, `tool_error`, `cancelled`) within the window. */
  errors: count,
  /** `errors / calls` in the window; null without calls. */
  errorRate: z.number().min(0).max(1).nullable(),
  /** Calls whose tool answered with an error result within the window. */
  toolErrors: count,
  /** Mean time to answer within the window, ms; null without calls. */
  meanMs: z.number().nonnegative().nullable(),
});
export type DashboardTool = z.infer<typeof DashboardToolSchema>;

export const FailedCallSchema = z.object({
  /** Epoch ms when the call was answered. */
  at: z.number(),
  tool: z.string(),
  /** Node whose answer the client got (null when none did). */
  nodeId: z.string().nullable(),
  outcome: z.enum(CALL_OUTCOMES),
  error: z.string().nullable(),
  callId: z.string().nullable(),
  /** W3C trace id (32 hex digits) of the call, when tracing is on or the client sent a `traceparent`. */
  traceId: z.string().nullable(),
  attempts: z.array(z.object({ nodeId: z.string(), result: z.enum(ATTEMPT_RESULTS) })),
  durationMs: z.number().nonnegative(),
});
export type FailedCall = z.infer<typeof FailedCallSchema>;

export const ReadinessSchema = z.object({
  ready: z.boolean(),
  /** Why the router is not ready (empty when ready). */
  reasons: z.array(z.string()),
  /** Problems that do not make the router unready but degrade it. */
  warnings: z.array(z.string()),
  registry: z.object({ kind: z.string(), synced: z.boolean(), reachable: z.boolean(), error: z.string().optional() }),
  nats: z.object({ connected: z.boolean() }),
  /** Nodes in the registry view. */
  nodes: count,
  /** Nodes with at least one working upstream session. */
  connectedNodes: count,
  /** Tools in the merged catalog. */
  tools: count,
  /** Open client MCP sessions. */
  sessions: count,
});
export type Readiness = z.infer<typeof ReadinessSchema>;

export const DashboardSnapshotSchema = z.object({
  v: z.literal(DASHBOARD_SNAPSHOT_VERSION),
  /** Epoch ms when the router built this snapshot. */
  generatedAt: z.number(),
  router: z.object({ strategy: z.string(), uptimeS: seconds, readiness: ReadinessSchema }),
  summary: z.object({
    nodes: z.object({ total: count, healthy: count, degraded: count, unhealthy: count, draining: count, gone: count }),
    tools: count,
    /** Length of the sliding window the rates are computed over, s (shorter right after start). */
    windowS: seconds,
    calls: count,
    callRate: z.number().nonnegative(),
    errors: count,
    errorRate: z.number().min(0).max(1).nullable(),
    toolErrors: count,
  }),
  nodes: z.array(DashboardNodeSchema),
  tools: z.array(DashboardToolSchema),
  /** Most recent first. */
  failures: z.array(FailedCallSchema),
});
export type DashboardSnapshot = z.infer<typeof DashboardSnapshotSchema>;
