import type { Identity } from './Identity.js';

/**
 * Tokens already verified, with the identity each proved, until they expire: a bounded map in least
 * recently used order. A client sends the same bearer token on every request of a session, so this
 * keeps the signature check off the per-call path (a hit is one map lookup and a clock read).
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, Identity>();

  constructor(private readonly capacity = 10_000) {}

  /** The identity `token` proved, while it is still valid. */
  get(token: string, now = Date.now()): Identity | undefined {
    const identity = this.entries.get(token);
    if (!identity) return undefined;
    if (identity.expiresAt !== undefined && identity.expiresAt <= now) {
      this.entries.delete(token);
      return undefined;
    }
    // Most recently used last.
    this.entries.delete(token);
    this.entries.set(token, identity);
    return identity;
  }

  set(token: string, identity: Identity): void {
    this.entries.delete(token);
    this.entries.set(token, identity);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Forgets every token (the key set or the trusted issuer changed). */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
