import { z } from 'zod';

/**
 * Shapes of the Consul HTTP API answers the registry reads, validated at the boundary. Only the fields we
 * use are required; Consul adds fields between versions and `passthrough` semantics (zod's default of
 * stripping unknown keys) keep us tolerant of that. Consul encodes empty maps and lists as `null`.
 */

/** A check as it appears in `Checks` of a `/v1/health/service/:service` entry. */
export const ConsulHealthCheckSchema = z.object({
  CheckID: z.string(),
  Name: z.string().optional(),
  /** `passing`, `warning`, `critical`; anything else (future states) is treated as critical. */
  Status: z.string(),
  Output: z.string().nullish(),
  ServiceID: z.string().nullish(),
  Type: z.string().nullish(),
});
export type ConsulHealthCheck = z.infer<typeof ConsulHealthCheckSchema>;

/** The `Service` part of a health entry. */
export const ConsulServiceSchema = z.object({
  ID: z.string(),
  Service: z.string(),
  Tags: z.array(z.string()).nullish(),
  Address: z.string().nullish(),
  Port: z.number().int().nullish(),
  Meta: z.record(z.string(), z.string()).nullish(),
  ModifyIndex: z.number().int().nonnegative().optional(),
});

/** The `Node` part of a health entry. */
export const ConsulNodeSchema = z.object({
  Node: z.string(),
  Address: z.string().nullish(),
});

/** One entry of `GET /v1/health/service/:service`: a service instance with its node and all its checks. */
export const ConsulServiceEntrySchema = z.object({
  Node: ConsulNodeSchema,
  Service: ConsulServiceSchema,
  Checks: z.array(ConsulHealthCheckSchema).nullish(),
});
export type ConsulServiceEntry = z.infer<typeof ConsulServiceEntrySchema>;

/**
 * The whole answer. Entries are validated one by one by the caller so that one odd entry (another tool
 * registering under our service name) is skipped instead of hiding every node.
 */
export const ConsulHealthServiceAnswerSchema = z.array(z.unknown());
