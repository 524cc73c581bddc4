import { z } from 'zod';
import { JwtOptionsSchema } from './JwtVerifier.js';

/** How the router's front door authenticates and authorizes clients (see docs/security.md#front-door). */
export const FrontDoorOptionsSchema = z.strictObject({
  /** OAuth 2.1 bearer JWTs from one issuer. */
  jwt: JwtOptionsSchema.optional(),
  /** A JSON file of hashed API keys (`flotilla keys create` writes it). */
  apiKeysFile: z.string().min(1).optional(),
  /** A JSON access policy file; without one (and without `policy`) every authenticated identity may use everything. */
  policyFile: z.string().min(1).optional(),
  /** An access policy document given inline (instead of `policyFile`). */
  policy: z.unknown().optional(),
  /**
   * The MCP endpoint's canonical URI as clients reach it (e.g. `https://mcp.example.com/mcp`): the
   * protected resource metadata's `resource`, and where `WWW-Authenticate` points. Default: from the
   * request's Host header.
   */
  resource: z.url().optional(),
  /** Shown in the protected resource metadata. */
  resourceName: z.string().min(1).max(256).default('Flotilla MCP router'),
  /** Scopes listed in the protected resource metadata. */
  scopesSupported: z.array(z.string().min(1)).max(64).optional(),
  /** Identities labelled by their own principal in metrics before the rest are `other`. */
  identityLabels: z.number().int().min(0).max(1000).default(20),
});
export type FrontDoorOptions = z.input<typeof FrontDoorOptionsSchema>;
export type ResolvedFrontDoorOptions = z.output<typeof FrontDoorOptionsSchema>;

/** Whether the options turn authentication on (a JWT issuer or an API key file). */
export function authConfigured(options: FrontDoorOptions | undefined): boolean {
  return options?.jwt !== undefined || options?.apiKeysFile !== undefined;
}

/** Whether `host` is a loopback listen address. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
