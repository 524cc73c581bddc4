import { z } from 'zod';
import type { Sealer } from '../sessions/Sealer.js';
import type { Identity } from './Identity.js';

/** Name of the cookie the dashboard page gets once its user presents a credential. */
export const OPS_COOKIE = 'flotilla_ops';

const OPS_COOKIE_TYP = 'flotilla-ops+jwe';

/** Longest a dashboard sign-in lasts (a revoked API key keeps a signed-in page at most this long), ms. */
export const OPS_COOKIE_TTL_MS = 15 * 60_000;

const SealedIdentitySchema = z.object({
  v: z.literal(1),
  exp: z.number().int(),
  identity: z.object({
    kind: z.enum(['jwt', 'api-key']),
    subject: z.string().min(1).max(256),
    issuer: z.string().max(2048).optional(),
    keyId: z.string().max(64).optional(),
    scopes: z.array(z.string().max(256)).max(64),
    roles: z.array(z.string().max(256)).max(64),
    principal: z.string().min(1).max(2400),
  }),
});

/**
 * The dashboard's sign-in cookie: the identity that presented a credential, sealed (JWE, the session key,
 * so every replica opens it) with an expiry no later than the credential's own. A browser's EventSource
 * cannot send an `Authorization` header; this cookie (HttpOnly, SameSite=Strict) lets the page's live
 * stream and polls carry the credential's identity without the page ever holding a token in a URL.
 */
export class OpsCookie {
  constructor(
    private readonly sealer: Sealer,
    /** Longest a cookie lasts, ms. */
    readonly ttlMs: number,
  ) {}

  /** A cookie value for `identity`, and when it expires (epoch ms). */
  async issue(identity: Identity, now = Date.now()): Promise<{ value: string; expiresAt: number }> {
    const expiresAt = Math.min(now + this.ttlMs, identity.expiresAt ?? Number.POSITIVE_INFINITY);
    const { kind, subject, issuer, keyId, scopes, roles, principal } = identity;
    const sealed = await this.sealer.seal(OPS_COOKIE_TYP, {
      v: 1,
      exp: expiresAt,
      identity: { kind, subject, ...(issuer !== undefined ? { issuer } : {}), ...(keyId !== undefined ? { keyId } : {}), scopes, roles, principal },
    });
    return { value: sealed, expiresAt };
  }

  /** The identity in a cookie value, or undefined when it is not one of ours or has expired. */
  async open(value: string, now = Date.now()): Promise<Identity | undefined> {
    const doc = await this.sealer.open(OPS_COOKIE_TYP, value, SealedIdentitySchema);
    if (!doc || doc.exp <= now) return undefined;
    return { ...doc.identity, expiresAt: doc.exp };
  }
}

/** The value of cookie `name` in a `Cookie` header, if present. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
