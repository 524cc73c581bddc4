import { z } from 'zod';
import { NodeIdSchema } from './NodeRecord.js';
import { PROTOCOL_VERSION } from './version.js';

/** Published on `<prefix>.v1.events` when a node joins, starts draining or leaves. */
export const NodeEventSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.enum(['joined', 'draining', 'left']),
  nodeId: NodeIdSchema,
  at: z.number().int(),
  reason: z.string().optional(),
});
export type NodeEvent = z.infer<typeof NodeEventSchema>;
