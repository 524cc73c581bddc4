import { randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import type { z } from 'zod';
import { AeadEnvelope } from './AeadEnvelope.js';

/** Bytes of a sealing key (AES-256-GCM). */
export const SEAL_KEY_BYTES = 32;

/**
 * Seals small documents into opaque, tamper-proof strings (JWE compact, `dir` + `A256GCM`, through `jose`)
 * that any router replica holding the same key can open: session ids that carry what the client said at
 * initialize, and resume tickets of streams. Each kind has its own `typ`, so one cannot pass for another.
 */
export class Sealer {
  private constructor(private readonly key: Uint8Array) {}

  /** A sealer with `key` (32 bytes). */
  static withKey(key: Uint8Array): Sealer {
    if (key.length !== SEAL_KEY_BYTES) throw new Error(`a session key must be ${SEAL_KEY_BYTES} bytes, got ${key.length}`);
    return new Sealer(new Uint8Array(key));
  }

  /** A sealer with a key from base64 (standard or url-safe), as operators configure it. */
  static fromBase64(text: string): Sealer {
    return Sealer.withKey(new Uint8Array(Buffer.from(text.trim(), 'base64')));
  }

  /** A sealer with a fresh random key (sessions it seals open only in this process). */
  static random(): Sealer {
    return new Sealer(new Uint8Array(randomBytes(SEAL_KEY_BYTES)));
  }

  /**
   * A synchronous sealer for tokens only the mesh's own replicas read, per call (resume tickets): AES-GCM
   * through `node:crypto` under a key derived from this one for `purpose` (see {@link AeadEnvelope}).
   */
  envelope(purpose: string): AeadEnvelope {
    return new AeadEnvelope(this.key, purpose);
  }

  async seal(typ: string, document: unknown): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(document))).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', typ }).encrypt(this.key);
  }

  /** Opens a sealed document of kind `typ` and checks it against `schema`; undefined when it is not one. */
  async open<S extends z.ZodType>(typ: string, sealed: string, schema: S): Promise<z.output<S> | undefined> {
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(sealed, this.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
      if (protectedHeader.typ !== typ) return undefined;
      const parsed = schema.safeParse(JSON.parse(new TextDecoder().decode(plaintext)));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
}
