/**
 * Who is calling the router, as the front door established it: from a verified OAuth bearer JWT, from an
 * API key, or nobody (the router runs open).
 */
export interface Identity {
  /** How the caller proved who it is. */
  readonly kind: 'jwt' | 'api-key' | 'anonymous';
  /** The JWT's `sub`, or the API key's subject. */
  readonly subject: string;
  /** The JWT's `iss` (absent for API keys). */
  readonly issuer?: string;
  /** The API key's id (absent for JWTs). */
  readonly keyId?: string;
  /** OAuth scopes (the JWT's `scope`/`scp`) or the API key's scopes. */
  readonly scopes: readonly string[];
  /** Roles (the JWT's `roles` claim) or the API key's roles. */
  readonly roles: readonly string[];
  /** When the credential stops being valid, epoch ms (JWT `exp`). */
  readonly expiresAt?: number;
  /**
   * One string naming this caller, stable across its tokens: `jwt:<iss>#<sub>`, `key:<id>` or
   * `anonymous`. Sessions are bound to it, and limits are kept per principal.
   */
  readonly principal: string;
}

/** The caller when the front door is open. */
export const ANONYMOUS: Identity = { kind: 'anonymous', subject: 'anonymous', scopes: [], roles: [], principal: 'anonymous' };

/** The principal of a JWT identity. */
export function jwtPrincipal(issuer: string, subject: string): string {
  return `jwt:${issuer}#${subject}`;
}

/** The principal of an API key identity. */
export function keyPrincipal(keyId: string): string {
  return `key:${keyId}`;
}
