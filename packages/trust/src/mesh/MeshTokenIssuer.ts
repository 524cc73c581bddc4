import { SignJWT } from 'jose';
import { MESH_TOKEN_TYPE } from '@flotilla/protocol';
import type { SeedKey } from '../keys/nkeyMaterial.js';

/** What a router request to an agent is for; a token names all of it. */
export interface MeshTarget {
  /** The agent's base URL origin as announced (the token's audience). */
  origin: string;
  /** The hosted server. */
  server: string;
  /** The tool, on a `tools/call`. */
  tool?: string;
  /** The client identity the router speaks for, when known. */
  identity?: string;
}

/** What {@link MeshTokenIssuer} needs. */
export interface MeshTokenIssuerDeps {
  /** The router's current mesh key (read on every token: a rotated key file takes effect at once). */
  key: () => SeedKey;
  /** The router replica's tag, named in every token (`rep`), so an agent can log which replica called. */
  replica?: string;
  /** Token lifetime, seconds (default 60). A token is reused for half of it. */
  ttlSeconds?: number;
  /** Most tokens cached (default 10,000; least recently used dropped). */
  maxCached?: number;
  now?: () => number;
}

interface CachedToken {
  token: Promise<string>;
  renewAt: number;
}

/**
 * Issues the short-lived mesh tokens routers send agents (`Authorization: Bearer`): a JWS (EdDSA, by
 * `jose`) whose `kid` is the router's mesh key, audience the agent's origin, with the server, the tool and
 * the client identity. Tokens are cached per target for half their lifetime, so a call usually costs a
 * map lookup, not a signature.
 */
export class MeshTokenIssuer {
  private readonly cache = new Map<string, CachedToken>();
  private readonly ttlSeconds: number;
  private readonly maxCached: number;
  private readonly now: () => number;

  constructor(private readonly deps: MeshTokenIssuerDeps) {
    this.ttlSeconds = deps.ttlSeconds ?? 60;
    this.maxCached = deps.maxCached ?? 10_000;
    this.now = deps.now ?? Date.now;
  }

  /** A token for `target` (cached or new). */
  token(target: MeshTarget): Promise<string> {
    const key = this.deps.key();
    const cacheKey = `${key.publicKey}|${target.origin}|${target.server}|${target.tool ?? ''}|${target.identity ?? ''}`;
    const now = this.now();
    const cached = this.cache.get(cacheKey);
    if (cached && cached.renewAt > now) {
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, cached);
      return cached.token;
    }
    const token = this.sign(key, target, now);
    const entry: CachedToken = { token, renewAt: now + (this.ttlSeconds * 1000) / 2 };
    this.cache.delete(cacheKey);
    this.cache.set(cacheKey, entry);
    token.catch(() => {
      if (this.cache.get(cacheKey) === entry) this.cache.delete(cacheKey);
    });
    if (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    return token;
  }

  /** HTTP headers carrying a token for `target`. */
  async headers(target: MeshTarget): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await this.token(target)}` };
  }

  private sign(key: SeedKey, target: MeshTarget, now: number): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({ srv: target.server, ...(target.tool ? { tool: target.tool } : {}), ...(this.deps.replica !== undefined ? { rep: this.deps.replica } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.publicKey, typ: MESH_TOKEN_TYPE })
      .setIssuer(key.publicKey)
      .setAudience(target.origin)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .setSubject(target.identity ?? 'router')
      .sign(key.privateKey);
  }
}
