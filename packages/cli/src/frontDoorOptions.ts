import { Command, InvalidArgumentError } from 'commander';
import type { FrontDoorOptions, LimitsOptions } from '@flotilla/router';
import { parsePositiveInt } from './options.js';

/** The front door and limits flags of `flotilla router`, as commander parses them. */
export interface FrontDoorCliOptions {
  authIssuer?: string;
  authAudience?: string[];
  authJwksUrl?: string;
  authRolesClaim?: string;
  apiKeysFile?: string;
  policyFile?: string;
  resourceUrl?: string;
  authScope?: string[];
  /** `--insecure` (securityFlags.ts): also lets the front door run open beyond loopback. */
  insecure: boolean;
  maxConcurrentCalls?: number;
  clientConcurrency?: number;
  sessionConcurrency?: number;
  clientQueue?: number;
  clientRate?: number;
  sessionRate?: number;
  maxSessionsPerIdentity?: number;
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  maxConnections?: number;
  streamIdleTimeoutMs?: number;
}

const repeat = (v: string, p: string[] = []): string[] => [...p, v];

function parseRate(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a rate (requests per second, 0 = no limit)`);
  return n;
}

/** Adds the front door (authentication, access policy) and limits flags to `command`. */
export function withFrontDoorOptions(command: Command): Command {
  return command
    .option('--auth-issuer <url>', 'accept OAuth bearer JWTs from this issuer (its `iss`); needs --auth-audience and --auth-jwks-url (or FLOTILLA_AUTH_ISSUER)')
    .option('--auth-audience <aud>', "accepted JWT audience, the router's resource URI (repeatable)", repeat)
    .option('--auth-jwks-url <url>', "the issuer's JWKS URL (its signing keys)")
    .option('--auth-roles-claim <claim>', 'JWT claim holding roles', 'roles')
    .option('--api-keys-file <path>', 'accept API keys from this file of hashed keys (`flotilla keys create`)')
    .option('--policy-file <path>', 'access policy (JSON): which identities may use which servers, tools, prompts and resources')
    .option('--resource-url <url>', "the MCP endpoint's public URL (protected resource metadata, WWW-Authenticate)")
    .option('--auth-scope <scope>', 'a scope clients may ask for, listed in the protected resource metadata and WWW-Authenticate (repeatable)', repeat)
    .option('--max-concurrent-calls <n>', 'forwarded requests running at once; the rest wait in a fair queue', parsePositiveInt)
    .option('--client-concurrency <n>', 'forwarded requests one client (identity) runs at once', parsePositiveInt)
    .option('--session-concurrency <n>', 'forwarded requests one session runs at once', parsePositiveInt)
    .option('--client-queue <n>', 'requests one client may have waiting; past it: RateLimited (-32020)', parsePositiveInt)
    .option('--client-rate <rps>', 'requests per second per client (0 = no limit)', parseRate)
    .option('--session-rate <rps>', 'requests per second per session (0 = no limit)', parseRate)
    .option('--max-sessions-per-identity <n>', 'sessions one identity may hold; initialize past it gets 429', parsePositiveInt)
    .option('--request-timeout-ms <ms>', 'a request (headers and body) must arrive within this', parsePositiveInt)
    .option('--headers-timeout-ms <ms>', "a request's headers must arrive within this", parsePositiveInt)
    .option('--max-connections <n>', 'most TCP connections the router holds', parsePositiveInt)
    .option('--stream-idle-timeout-ms <ms>', 'close a session whose open streams carried nothing and that sent nothing for this long', parsePositiveInt);
}

/** The router options the flags give. */
export function frontDoorRouterOptions(o: FrontDoorCliOptions): { auth?: FrontDoorOptions; insecure: boolean; limits: LimitsOptions } {
  const issuer = o.authIssuer ?? process.env.FLOTILLA_AUTH_ISSUER;
  const audience = o.authAudience ?? (process.env.FLOTILLA_AUTH_AUDIENCE ? [process.env.FLOTILLA_AUTH_AUDIENCE] : undefined);
  const jwksUrl = o.authJwksUrl ?? process.env.FLOTILLA_AUTH_JWKS_URL;
  if (issuer && (!audience || !jwksUrl)) throw new InvalidArgumentError('--auth-issuer needs --auth-audience and --auth-jwks-url');
  const auth: FrontDoorOptions = {
    ...(issuer && audience && jwksUrl ? { jwt: { issuer, audience, jwksUrl, rolesClaim: o.authRolesClaim ?? 'roles' } } : {}),
    ...(o.apiKeysFile ? { apiKeysFile: o.apiKeysFile } : {}),
    ...(o.policyFile ? { policyFile: o.policyFile } : {}),
    ...(o.resourceUrl ? { resource: o.resourceUrl } : {}),
    ...(o.authScope ? { scopesSupported: o.authScope } : {}),
  };
  const limits: LimitsOptions = {
    ...(o.maxConcurrentCalls !== undefined ? { maxConcurrentCalls: o.maxConcurrentCalls } : {}),
    ...(o.clientConcurrency !== undefined ? { perClientConcurrency: o.clientConcurrency } : {}),
    ...(o.sessionConcurrency !== undefined ? { perSessionConcurrency: o.sessionConcurrency } : {}),
    ...(o.clientQueue !== undefined ? { perClientQueue: o.clientQueue } : {}),
    ...(o.clientRate !== undefined ? { perClientRate: o.clientRate } : {}),
    ...(o.sessionRate !== undefined ? { perSessionRate: o.sessionRate } : {}),
    ...(o.maxSessionsPerIdentity !== undefined ? { maxSessionsPerIdentity: o.maxSessionsPerIdentity } : {}),
    ...(o.requestTimeoutMs !== undefined ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
    ...(o.headersTimeoutMs !== undefined ? { headersTimeoutMs: o.headersTimeoutMs } : {}),
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    ...(o.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: o.streamIdleTimeoutMs } : {}),
  };
  return { ...(Object.keys(auth).length > 0 ? { auth } : {}), insecure: o.insecure === true, limits };
}
