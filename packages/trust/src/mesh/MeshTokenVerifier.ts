import type { KeyObject } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { MESH_TOKEN_TYPE, MeshTokenClaimsSchema, type MeshTokenClaims } from '@flotilla/protocol';
import { keyFromPublic } from '../keys/nkeyMaterial.js';

/** What {@link MeshTokenVerifier} needs. */
export interface MeshTokenVerifierDeps {
  /** Public keys of the routers' mesh keys this agent accepts (read on every check, so rotation applies at once). */
  keys: () => ReadonlySet<string>;
  /** Called when a token names a key not in `keys`, before it is refused: a chance to re-read a key file (rotation). */
  refreshKeys?: () => ReadonlySet<string>;
  /** This agent's origin (its announced base URL's origin): tokens for any other audience are refused. */
  audience: () => string;
  /** Clock skew allowed, seconds (default 5). */
  clockToleranceSeconds?: number;
  /** Longest lifetime a token may claim, seconds (default 300): a leaked long-lived token is refused. */
  maxTtlSeconds?: number;
  /** Most verified tokens remembered (default 10,000). */
  maxCached?: number;
  now?: () => number;
}

/** Outcome of a check. */
export type MeshTokenCheck = { ok: true; claims: MeshTokenClaims } | { ok: false; reason: string };

/**
 * Verifies mesh tokens on an agent (`jose`, EdDSA): signed by a trusted router mesh key (`kid`), for this
 * agent (`aud`), current (`exp`, `iat`, within the clock tolerance), not longer-lived than allowed. A token
 * verified once is remembered until it expires (bounded), so repeated calls with the same token cost a
 * map lookup; a remembered token still fails as soon as its key leaves the trusted set.
 */
export class MeshTokenVerifier {
  private readonly verified = new Map<string, MeshTokenClaims>();
  private readonly keyObjects = new Map<string, KeyObject>();
  private readonly now: () => number;

  constructor(private readonly deps: MeshTokenVerifierDeps) {
    this.now = deps.now ?? Date.now;
  }

  async check(token: string): Promise<MeshTokenCheck> {
    const nowS = this.now() / 1000;
    const tolerance = this.deps.clockToleranceSeconds ?? 5;
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.exp + tolerance > nowS && this.deps.keys().has(cached.iss)) return { ok: true, claims: cached };
      this.verified.delete(token);
    }
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return { ok: false, reason: 'malformed token' };
    }
    if (!kid) return { ok: false, reason: 'token names no key (kid)' };
    let keys = this.deps.keys();
    if (!keys.has(kid) && this.deps.refreshKeys) keys = this.deps.refreshKeys();
    if (!keys.has(kid)) return { ok: false, reason: 'token signed by a key this agent does not trust' };
    const key = this.keyObject(kid);
    if (!key) return { ok: false, reason: 'token names a malformed key' };
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        typ: MESH_TOKEN_TYPE,
        audience: this.deps.audience(),
        issuer: kid,
        clockTolerance: tolerance,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp', 'iat', 'aud'],
      }));
    } catch (err) {
      return { ok: false, reason: `token rejected: ${(err as Error).message}` };
    }
    const claims = MeshTokenClaimsSchema.safeParse(payload);
    if (!claims.success) return { ok: false, reason: 'token claims malformed' };
    if (claims.data.exp - claims.data.iat > (this.deps.maxTtlSeconds ?? 300)) return { ok: false, reason: 'token lifetime too long' };
    this.remember(token, claims.data);
    return { ok: true, claims: claims.data };
  }

  private remember(token: string, claims: MeshTokenClaims): void {
    this.verified.set(token, claims);
    if (this.verified.size > (this.deps.maxCached ?? 10_000)) this.verified.delete(this.verified.keys().next().value!);
  }

  private keyObject(kid: string): KeyObject | undefined {
    let key = this.keyObjects.get(kid);
    if (!key) {
      try {
        key = keyFromPublic(kid);
      } catch {
        return undefined;
      }
      this.keyObjects.set(kid, key);
      if (this.keyObjects.size > 64) this.keyObjects.delete(this.keyObjects.keys().next().value!);
    }
    return key;
  }
}
