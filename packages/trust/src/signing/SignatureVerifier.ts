import { verify, type KeyObject } from 'node:crypto';
import { SignatureSchema, signingInput } from '@flotilla/protocol';
import { keyFromPublic } from '../keys/nkeyMaterial.js';

/** Most decoded public keys kept; past it the least recently used one is decoded again when needed. */
const DEFAULT_KEY_CACHE = 4096;

/**
 * Verifies ed25519 signatures made by {@link Signer} against NKey public keys. Decoded keys are cached
 * (bounded), so a verification costs one ed25519 verify (~80 µs on the project's machine). Never throws:
 * a malformed key or signature is a failed verification.
 */
export class SignatureVerifier {
  private readonly keys = new Map<string, KeyObject>();

  constructor(private readonly maxKeys: number = DEFAULT_KEY_CACHE) {}

  /** Whether `signature` is `publicKey`'s signature over `signingInput(context, payload)`. */
  verify(publicKey: string, context: string, payload: Uint8Array, signature: string): boolean {
    if (!SignatureSchema.safeParse(signature).success) return false;
    const key = this.key(publicKey);
    if (!key) return false;
    try {
      return verify(null, signingInput(context, payload), key, Buffer.from(signature, 'base64url'));
    } catch {
      return false;
    }
  }

  /** {@link verify} over the UTF-8 of `text`. */
  verifyText(publicKey: string, context: string, text: string, signature: string): boolean {
    return this.verify(publicKey, context, new TextEncoder().encode(text), signature);
  }

  private key(publicKey: string): KeyObject | undefined {
    const cached = this.keys.get(publicKey);
    if (cached) {
      this.keys.delete(publicKey);
      this.keys.set(publicKey, cached);
      return cached;
    }
    let key: KeyObject;
    try {
      key = keyFromPublic(publicKey);
    } catch {
      return undefined;
    }
    this.keys.set(publicKey, key);
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
    return key;
  }
}
