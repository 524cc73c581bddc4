import { z } from 'zod';
import { PROTOCOL_VERSION } from './version.js';

/** Request sent to `<prefix>.v1.control.<nodeId>` (NATS request/reply), e.g. by `flotilla drain`. */
export const ControlRequestSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  op: z.enum(['drain', 'status']),
  /** For `drain`: how long in-flight calls may run before the agent deregisters anyway. */
  graceMs: z.number().int().positive().optional(),
});
export type ControlRequest = z.infer<typeof ControlRequestSchema>;

export const ControlReplySchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  ok: z.boolean(),
  nodeId: z.string(),
  draining: z.boolean(),
  inflight: z.number().int().nonnegative(),
  queued: z.number().int().nonnegative(),
  error: z.string().optional(),
});
export type ControlReply = z.infer<typeof ControlReplySchema>;
