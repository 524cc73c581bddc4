import { z } from 'zod';
import { NodeIdSchema } from './NodeRecord.js';
import { PROTOCOL_VERSION } from './version.js';

/** Request sent to `<prefix>.v1.control.<nodeId>` (NATS request/reply), e.g. by `flotilla drain`. */
export const ControlRequestSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  op: z.enum(['drain', 'status']),
  /** For `drain`: how long in-flight calls may run before the agent deregisters anyway. */
  graceMs: z.number().int().positive().optional(),
  /**
   * For a signed request (headers `Flotilla-Signer` and `Flotilla-Sig`, signed over the control subject
   * and this payload): the target node, when the request was made (epoch ms) and a random nonce, so a
   * captured request cannot be sent to another node, nor sent again.
   */
  nodeId: NodeIdSchema.optional(),
  at: z.number().int().positive().optional(),
  nonce: z.string().min(8).max(64).optional(),
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
