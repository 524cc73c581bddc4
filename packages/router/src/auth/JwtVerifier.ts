import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { jwtPrincipal, type Identity } from './Identity.js';
import { VerifiedTokenCache } from './VerifiedTokenCache.js';

/** Signature algorithms accepted by default (asymmetric only: the router never holds a signing secret). */
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;

/** How the router checks bearer JWTs. */
export const JwtOptionsSchema = z.object({
  /** The authorization server's issuer identifier (`iss` must equal it). */
  issuer: z.url(),
  /** Accepted audiences (`aud` must hold one): the router's canonical resource URI, RFC 8707. */
  audience: z.array(z.string().min(1)).min(1),
  /** Where the issuer publishes its signing keys (JWKS). */
  jwksUrl: z.url(),
  algorithms: z.array(z.string().min(1)).min(1).default([...DEFAULT_JWT_ALGORITHMS]),
  /** Leeway for `exp`/`nbf`, seconds. */
  clockToleranceSec: z.number().int().min(0).max(300).default(5),
  /** The claim holding roles (an array of strings, or a space-separated string). */
  rolesClaim: z.string().min(1).default('roles'),
  /** After a JWKS fetch, a token naming an unknown key triggers the next fetch no sooner than this, ms. */
  jwksCooldownMs: z.number().int().min(0).max(600_000).default(5000),
});
export type JwtOptions = z.input<typeof JwtOptionsSchema>;

/** The verdict on one token. */
export type TokenVerdict =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: 'invalid'; readonly description: string }
  | { readonly ok: false; readonly reason: 'unavailable'; readonly description: string };

/**
 * Verifies OAuth 2.1 bearer JWTs (the MCP authorization spec's resource-server side) with `jose`: the
 * signature against the issuer's JWKS (fetched once and cached by `jose`, fetched again when a token names
 * a key it does not know, so the issuer can rotate keys), then `iss`, `aud`, `exp` and `nbf`. A token that
 * passed is cached with its identity until it expires, so a session's later requests cost a map lookup.
 */
export class JwtVerifier {
  private readonly options: z.output<typeof JwtOptionsSchema>;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly cache: VerifiedTokenCache;

  constructor(options: JwtOptions, cacheSize = 10_000) {
    this.options = JwtOptionsSchema.parse(options);
    this.jwks = createRemoteJWKSet(new URL(this.options.jwksUrl), { cooldownDuration: this.options.jwksCooldownMs, cacheMaxAge: 10 * 60_000, timeoutDuration: 5000 });
    this.cache = new VerifiedTokenCache(cacheSize);
  }

  get issuer(): string {
    return this.options.issuer;
  }

  /** Checks `token`; a token seen before and not yet expired is answered from the cache. */
  async verify(token: string): Promise<TokenVerdict> {
    const cached = this.cache.get(token);
    if (cached) return { ok: true, identity: cached };
    return this.verifyUncached(token);
  }

  /** The identity of a token verified before and not yet expired (no await: the per-request fast path). */
  cached(token: string): Identity | undefined {
    return this.cache.get(token);
  }

  /** Checks `token` without the cache (the full signature check; for measurements). */
  async verifyUncached(token: string): Promise<TokenVerdict> {
    if (token.length > 16_384) return { ok: false, reason: 'invalid', description: 'token too long' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: this.options.algorithms,
        clockTolerance: this.options.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      return verdictOf(err);
    }
    const identity: Identity = {
      kind: 'jwt',
      subject: payload.sub!,
      issuer: this.options.issuer,
      scopes: stringList(payload['scope'] ?? payload['scp']),
      roles: stringList(payload[this.options.rolesClaim]),
      expiresAt: payload.exp! * 1000,
      principal: jwtPrincipal(this.options.issuer, payload.sub!),
    };
    this.cache.set(token, identity);
    return { ok: true, identity };
  }
}

function verdictOf(err: unknown): TokenVerdict {
  if (err instanceof errors.JWTExpired) return { ok: false, reason: 'invalid', description: 'The access token expired' };
  if (err instanceof errors.JWTClaimValidationFailed) return { ok: false, reason: 'invalid', description: `The access token's "${err.claim}" claim is not accepted (${err.reason})` };
  if (err instanceof errors.JWKSTimeout) return { ok: false, reason: 'unavailable', description: "The issuer's signing keys cannot be fetched now" };
  if (err instanceof errors.JOSEError) {
    if (err.code === 'ERR_JWKS_INVALID' || err.code === 'ERR_JOSE_GENERIC') return { ok: false, reason: 'unavailable', description: "The issuer's signing keys cannot be fetched now" };
    return { ok: false, reason: 'invalid', description: `The access token is not valid (${err.code})` };
  }
  // A network failure fetching the JWKS.
  return { ok: false, reason: 'unavailable', description: "The issuer's signing keys cannot be fetched now" };
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s.length > 0);
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string');
  return [];
}
