import { z } from 'zod';

/** Liveness data an agent attaches to each registry heartbeat (Consul TTL check output, NATS KV record). */
export const PingDataSchema = z.object({
  at: z.number().int(),
  /** Round-trip to NATS in ms; absent while NATS is unreachable. */
  natsRttMs: z.number().nonnegative().optional(),
  inflight: z.number().int().nonnegative(),
  queued: z.number().int().nonnegative(),
  eventLoopLagMs: z.number().nonnegative(),
  uptimeS: z.number().nonnegative(),
  /** `degraded` maps to Consul's `warning`. */
  status: z.enum(['ok', 'degraded', 'draining']),
});
export type PingData = z.infer<typeof PingDataSchema>;
