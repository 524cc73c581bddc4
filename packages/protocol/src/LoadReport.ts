import { z } from 'zod';
import { NodeIdSchema } from './NodeRecord.js';
import { PROTOCOL_VERSION } from './version.js';

/** Per-tool latency statistics an agent keeps (tool name as the server knows it, prefixed by server). */
export const ToolLatencySchema = z.object({
  /** Exponentially weighted moving average of completed call duration, ms. */
  ewmaMs: z.number().nonnegative(),
  completed: z.number().int().nonnegative(),
});

/** Published on `<prefix>.v1.load.<nodeId>` every second and whenever load changes. */
export const LoadReportSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  nodeId: NodeIdSchema,
  /** Monotonic per agent process; receivers drop reports older than the last seen. */
  seq: z.number().int().nonnegative(),
  at: z.number().int(),
  inflight: z.number().int().nonnegative(),
  queued: z.number().int().nonnegative(),
  capacity: z.number().int().positive(),
  eventLoopLagMs: z.number().nonnegative(),
  draining: z.boolean(),
  /**
   * Tasks (MCP 2025-11-25) created on the node and not yet seen to end. Their work runs after the
   * task-augmented call was answered, so it is not in `inflight`; absent from agents older than tasks.
   */
  tasks: z.number().int().nonnegative().optional(),
  /** Keyed by `<server>/<tool>`. */
  tools: z.record(z.string(), ToolLatencySchema),
});
export type LoadReport = z.infer<typeof LoadReportSchema>;
