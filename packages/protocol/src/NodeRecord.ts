import { z } from 'zod';
import { NKeyPublicSchema } from './signing.js';
import { PROTOCOL_VERSION } from './version.js';

/** A node id: stable per agent, safe as a NATS subject token, a KV key part and a Consul service id. */
export const NodeIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/, 'node id may contain only letters, digits, "_" and "-"');
export type NodeId = z.infer<typeof NodeIdSchema>;

/** An MCP server name as hosted by an agent; becomes the tool-name namespace. */
export const ServerNameSchema = z
  .string()
  .min(1)
  .max(48)
  .regex(/^[A-Za-z0-9-]+$/, 'server name may contain only letters, digits and "-"');

/**
 * How a router spreads one client's calls to a server over the nodes hosting it:
 * - `none`: per call, by load (the default);
 * - `sticky`: all of one client session's calls go to one node, and move only when that node fails
 *   (for servers that keep per-session state: logs, subscriptions, notes, timers, tasks).
 */
export const ServerAffinitySchema = z.enum(['none', 'sticky']);
export type ServerAffinity = z.infer<typeof ServerAffinitySchema>;

/** One MCP server hosted on a node. */
export const HostedServerSchema = z.object({
  name: ServerNameSchema,
  /** Path of the server's Streamable HTTP endpoint on the agent, e.g. `/mcp/echo`. */
  path: z.string().startsWith('/'),
  /** Digest of the server's tool list (names, schemas, annotations); equal digests mean interchangeable replicas. */
  toolDigest: z.string().min(1),
  toolCount: z.number().int().nonnegative(),
  /**
   * Session affinity the server asks of routers. Optional on the wire: records of agents older than the
   * field (and literals that leave it out) mean `none`; read it with {@link serverAffinity}. A value this
   * reader does not know (a newer agent's) reads as absent rather than making the whole record invalid:
   * one field must not drop a node from the fleet.
   */
  affinity: ServerAffinitySchema.optional().catch(undefined),
});
export type HostedServer = z.infer<typeof HostedServerSchema>;

/** The affinity of a hosted server, `none` when its record does not say. */
export function serverAffinity(server: Pick<HostedServer, 'affinity'>): ServerAffinity {
  return server.affinity ?? 'none';
}

/** What an agent announces in the registry. */
export const NodeRecordSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  nodeId: NodeIdSchema,
  /** Random per agent process: tells a restart of the same node, or a second process claiming its id, from a heartbeat. */
  instanceId: z.string().min(1),
  /** Base URL of the agent's HTTP server; a hosted server is at `mcpBaseUrl + server.path`. */
  mcpBaseUrl: z.url(),
  servers: z.array(HostedServerSchema),
  /** Flotilla version of the agent. */
  version: z.string(),
  zone: z.string().optional(),
  /** host:port of the agent's grpc.health.v1 service, when it runs one. */
  healthAddress: z.string().optional(),
  /** Max concurrent tool calls the node runs; the rest queue in the agent. */
  capacity: z.number().int().positive(),
  startedAt: z.number().int(),
  draining: z.boolean().default(false),
  /**
   * The node's signing key (NKey public key): its record, load, progress and event messages are signed
   * with it. Absent from unsigned records (agents older than signing, or run without it), which routers
   * accept only when their operator opted out of signature checks.
   */
  nodeKey: NKeyPublicSchema.optional(),
  /** The operator-issued credential binding `nodeKey` to `nodeId` (see `NodeCredentialSchema`). */
  credential: z.string().max(2048).optional(),
});
export type NodeRecord = z.infer<typeof NodeRecordSchema>;
