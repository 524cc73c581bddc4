import { z } from 'zod';
import { NodeIdSchema } from './NodeRecord.js';
import { PROTOCOL_VERSION } from './version.js';

/** Progress of one in-flight call on a node. */
export const CallProgressSchema = z.object({
  /** The router-assigned call id (from `_meta["flotilla/callId"]`), else `<session>:<requestId>`. */
  callId: z.string(),
  server: z.string(),
  tool: z.string(),
  progress: z.number().nonnegative(),
  total: z.number().nonnegative().optional(),
  elapsedMs: z.number().nonnegative(),
});
export type CallProgress = z.infer<typeof CallProgressSchema>;

/** Published on `<prefix>.v1.progress.<nodeId>`: the latest progress of calls that reported since the last report (coalesced). */
export const ProgressReportSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  nodeId: NodeIdSchema,
  at: z.number().int(),
  calls: z.array(CallProgressSchema),
});
export type ProgressReport = z.infer<typeof ProgressReportSchema>;
