import { z } from '../../packages/registry/test/support/testDeps.js';

/**
 * Request bodies the stand-in accepts, in the PascalCase shape Consul's HTTP API documents. Unknown
 * fields are ignored (Consul accepts many more); only what the stand-in acts on is typed.
 */

const Duration = z.string();
const CheckStatus = z.string();

/** A check definition in `Check`/`Checks` of a service registration. */
export const CheckDefinitionSchema = z.object({
  CheckID: z.string().optional(),
  ID: z.string().optional(),
  Name: z.string().optional(),
  Notes: z.string().optional(),
  Status: CheckStatus.optional(),
  TTL: Duration.optional(),
  GRPC: z.string().optional(),
  GRPCUseTLS: z.boolean().optional(),
  HTTP: z.string().optional(),
  TCP: z.string().optional(),
  Args: z.array(z.string()).optional(),
  Interval: Duration.optional(),
  Timeout: Duration.optional(),
  DeregisterCriticalServiceAfter: Duration.optional(),
});
export type CheckDefinition = z.infer<typeof CheckDefinitionSchema>;

/** Body of `PUT /v1/agent/service/register`. */
export const ServiceRegistrationSchema = z.object({
  ID: z.string().optional(),
  Name: z.string().optional(),
  Tags: z.array(z.string()).nullish(),
  Address: z.string().optional(),
  Port: z.number().int().min(0).max(65535).optional(),
  Meta: z.record(z.string(), z.string()).nullish(),
  EnableTagOverride: z.boolean().optional(),
  Weights: z.object({ Passing: z.number().int(), Warning: z.number().int() }).optional(),
  Check: CheckDefinitionSchema.nullish(),
  Checks: z.array(CheckDefinitionSchema).nullish(),
});
export type ServiceRegistration = z.infer<typeof ServiceRegistrationSchema>;

/** Body of `PUT /v1/agent/check/update/:check_id`. */
export const CheckUpdateSchema = z.object({
  Status: z.string().optional(),
  Output: z.string().optional(),
});

/** Consul's service meta rules (agent/structs validateMetaPair, ValidateServiceMetadata). */
export function validateServiceMeta(meta: Record<string, string>): string | undefined {
  const entries = Object.entries(meta);
  if (entries.length > 64) return 'Node metadata cannot contain more than 64 key/value pairs';
  for (const [key, value] of entries) {
    if (key === '') return 'Key cannot be blank';
    if (!/^[a-zA-Z0-9_-]+$/.test(key)) return `Key contains invalid characters`;
    if (key.length > 128) return `Key is too long (limit: 128 characters)`;
    if (key.startsWith('consul-')) return `Key prefix "consul-" is reserved for internal use`;
    if (Buffer.byteLength(value) > 512) return `Value is too long (limit: 512 characters)`;
  }
  return undefined;
}

/** Valid check statuses. */
export const CHECK_STATUSES = ['passing', 'warning', 'critical'] as const;
export type CheckStatusValue = (typeof CHECK_STATUSES)[number];
export function isCheckStatus(value: string): value is CheckStatusValue {
  return (CHECK_STATUSES as readonly string[]).includes(value);
}
