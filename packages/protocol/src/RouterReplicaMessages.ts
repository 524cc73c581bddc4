import { z } from 'zod';

const RequestIdSchema = z.union([z.string().max(512), z.number().finite()]);

/** A message for a client (a notification, or a request to it) as router replicas pass it on. */
export const ClientBoundMessageSchema = z.object({
  method: z.string().min(1).max(256),
  params: z.record(z.string(), z.unknown()).optional(),
});

/** On `sessionPush(sid)`: a notification for the client, from the replica that got it from a server. */
export const SessionPushSchema = z.object({ message: ClientBoundMessageSchema });
export type SessionPush = z.infer<typeof SessionPushSchema>;

/** On `sessionAsk(sid)`: a request for the client; the reply is a {@link SessionAskReply}. */
export const SessionAskSchema = z.object({ request: ClientBoundMessageSchema, timeoutMs: z.number().int().positive().max(3_600_000) });
export type SessionAsk = z.infer<typeof SessionAskSchema>;

export const SessionAskReplySchema = z.union([
  z.object({ result: z.record(z.string(), z.unknown()) }),
  z.object({ error: z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() }) }),
]);
export type SessionAskReply = z.infer<typeof SessionAskReplySchema>;

/** On `replicaAnswers(tag)`: a client's answer to a request that replica sent it. */
export const ReplicaAnswerSchema = z.object({
  sid: z.string().min(1).max(64),
  response: z.object({
    id: RequestIdSchema,
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() }).optional(),
  }),
});
export type ReplicaAnswer = z.infer<typeof ReplicaAnswerSchema>;

/** On `sessionCancels`: a client cancelled a request that may run on another replica. */
export const SessionCancelSchema = z.object({ sid: z.string().min(1).max(64), requestId: RequestIdSchema, reason: z.string().max(1000).optional() });
export type SessionCancel = z.infer<typeof SessionCancelSchema>;

/** Most principals one heartbeat names (the replica sends those with the most sessions). */
export const MAX_HEARTBEAT_PRINCIPALS = 10_000;

/**
 * On `routerHeartbeats`: a router replica is alive, and (`sessions`) how many client sessions each
 * authenticated principal holds on it, for the mesh-wide cap on sessions per identity.
 */
export const RouterHeartbeatSchema = z.object({
  tag: z.string().min(1).max(64),
  at: z.number().int(),
  sessions: z
    .record(z.string().min(1).max(2400), z.number().int().min(1).max(1_000_000))
    .refine((r) => Object.keys(r).length <= MAX_HEARTBEAT_PRINCIPALS, `at most ${MAX_HEARTBEAT_PRINCIPALS} principals`)
    .optional(),
});
export type RouterHeartbeat = z.infer<typeof RouterHeartbeatSchema>;

/**
 * A client's upstream session on one node instance × server, as any router replica can take it up: the
 * session id the node gave, the protocol version agreed, and what the server said it can do. Kept in the
 * session record (NATS KV) and sent in stream hand-offs.
 */
export const UpstreamBindingSchema = z.object({
  nodeId: z.string().min(1).max(128),
  instanceId: z.string().min(1).max(128),
  server: z.string().min(1).max(64),
  sessionId: z.string().min(1).max(1024),
  protocolVersion: z.string().min(1).max(32),
  capabilities: z.record(z.string(), z.unknown()),
  /** The router replica that holds its standalone stream, if one does. */
  holder: z.string().max(64).optional(),
});
export type UpstreamBinding = z.infer<typeof UpstreamBindingSchema>;

/** On `sessionStreams(sid)`: hold the standalone stream of this upstream session of the client; the reply is empty once it is open. */
export const SessionStreamHandOffSchema = z.object({ binding: UpstreamBindingSchema.omit({ holder: true }) });
export type SessionStreamHandOff = z.infer<typeof SessionStreamHandOffSchema>;
