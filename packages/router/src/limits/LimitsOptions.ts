import { z } from 'zod';

/**
 * Fairness and limits of the router's front (issue 11, item 5). A client is its principal when it is
 * authenticated, else its session (an open router cannot tell clients apart otherwise).
 */
export const LimitsOptionsSchema = z.strictObject({
  /** Forwarded requests (calls, reads, prompts, completions) running at once on this replica; the rest wait, served fairly across clients. */
  maxConcurrentCalls: z.number().int().positive().default(1024),
  /** Forwarded requests one client runs at once; its further ones wait. */
  perClientConcurrency: z.number().int().positive().default(32),
  /** Forwarded requests one session runs at once; its further ones wait. */
  perSessionConcurrency: z.number().int().positive().default(8),
  /** Requests one client may have waiting; past it they get RateLimited (-32020). */
  perClientQueue: z.number().int().min(0).default(512),
  /** Requests waiting on this replica in all; past it they get RateLimited. */
  maxQueued: z.number().int().min(0).default(10_000),
  /** A request that waited this long gets RateLimited, ms. */
  maxQueueWaitMs: z.number().int().positive().default(60_000),
  /** Requests per second one client may send (token bucket; 0: no limit). */
  perClientRate: z.number().min(0).default(0),
  /** Burst of the per-client rate (default: twice the rate). */
  perClientBurst: z.number().int().positive().optional(),
  /** Requests per second one session may send (0: no limit). */
  perSessionRate: z.number().min(0).default(0),
  perSessionBurst: z.number().int().positive().optional(),
  /** Sessions one authenticated identity may hold at once on this replica; `initialize` past it gets 429. */
  maxSessionsPerIdentity: z.number().int().positive().default(100),
  /** Header and body of a request must arrive within this, ms (slow-loris protection). */
  requestTimeoutMs: z.number().int().positive().default(30_000),
  /** Headers of a request must arrive within this, ms. */
  headersTimeoutMs: z.number().int().positive().default(10_000),
  /** Most TCP connections the router's HTTP server holds. */
  maxConnections: z.number().int().positive().default(10_000),
  /** A session whose open streams carried nothing from its servers, and that sent nothing, for this long is ended, ms (0: the session idle timeout). */
  streamIdleTimeoutMs: z.number().int().min(0).default(0),
}).refine((l) => l.headersTimeoutMs <= l.requestTimeoutMs, { message: 'headersTimeoutMs must not exceed requestTimeoutMs', path: ['headersTimeoutMs'] });
export type LimitsOptions = z.input<typeof LimitsOptionsSchema>;
export type ResolvedLimits = z.output<typeof LimitsOptionsSchema>;
