import { Counter, type Registry } from '@flotilla/telemetry';
import type { PolicyReloadResult } from './PolicyFile.js';

/** Why a request was not authenticated. */
export type AuthFailure = 'missing' | 'invalid' | 'unavailable';

/** What the front door counts; every `identity` label comes from {@link IdentityLabels} (bounded). */
export interface FrontDoorObserver {
  authenticated(identityLabel: string): void;
  authFailed(reason: AuthFailure): void;
  denied(identityLabel: string, kind: string): void;
  rateLimited(identityLabel: string, limit: string): void;
  sessionRefused(identityLabel: string): void;
  /** The policy file changed and was read again: `ok` (in force) or `invalid` (the previous one stays). */
  policyReloaded?(result: PolicyReloadResult): void;
}

/** The front door's Prometheus counters, on the router's registry. */
export class AuthMetrics implements FrontDoorObserver {
  private readonly requests: Counter<'identity'>;
  private readonly failures: Counter<'reason'>;
  private readonly deniedTotal: Counter<'identity' | 'kind'>;
  private readonly limited: Counter<'identity' | 'limit'>;
  private readonly sessionsRefused: Counter<'identity'>;
  private readonly policyReloads: Counter<'result'>;

  constructor(registry: Registry, prefix = 'flotilla_router') {
    const registers = [registry];
    this.requests = new Counter({ name: `${prefix}_client_requests_total`, help: 'Authenticated HTTP requests to /mcp by identity label (bounded).', labelNames: ['identity'], registers });
    this.failures = new Counter({ name: `${prefix}_auth_failures_total`, help: 'Requests to /mcp refused with 401 (missing or invalid credential) or 503 (keys unavailable).', labelNames: ['reason'], registers });
    this.deniedTotal = new Counter({ name: `${prefix}_access_denied_total`, help: 'Requests the access policy refused, by identity label and kind (tool, prompt, resource).', labelNames: ['identity', 'kind'], registers });
    this.limited = new Counter({ name: `${prefix}_rate_limited_total`, help: 'Requests refused by a rate limit or concurrency cap, by identity label and limit.', labelNames: ['identity', 'limit'], registers });
    this.policyReloads = new Counter({ name: `${prefix}_policy_reloads_total`, help: 'Reads of a changed access policy file: ok (in force) or invalid (the previous policy stays).', labelNames: ['result'], registers });
    this.sessionsRefused = new Counter({ name: `${prefix}_identity_sessions_refused_total`, help: 'initialize refused because the identity holds its maximum of sessions.', labelNames: ['identity'], registers });
  }

  authenticated(identityLabel: string): void {
    this.requests.inc({ identity: identityLabel });
  }

  authFailed(reason: AuthFailure): void {
    this.failures.inc({ reason });
  }

  denied(identityLabel: string, kind: string): void {
    this.deniedTotal.inc({ identity: identityLabel, kind });
  }

  rateLimited(identityLabel: string, limit: string): void {
    this.limited.inc({ identity: identityLabel, limit });
  }

  sessionRefused(identityLabel: string): void {
    this.sessionsRefused.inc({ identity: identityLabel });
  }

  policyReloaded(result: PolicyReloadResult): void {
    this.policyReloads.inc({ result });
  }
}
