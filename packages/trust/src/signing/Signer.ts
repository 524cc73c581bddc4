import { sign } from 'node:crypto';
import { signingInput } from '@flotilla/protocol';
import { b64url, keyFromSeed, type SeedKey } from '../keys/nkeyMaterial.js';

/** Signs payloads with one NKey seed (ed25519 through Node's crypto). */
export class Signer {
  private readonly key: SeedKey;

  constructor(seed: string) {
    this.key = keyFromSeed(seed);
  }

  /** The public key signatures verify with. */
  get publicKey(): string {
    return this.key.publicKey;
  }

  /** Signature (base64url) over `signingInput(context, payload)`. */
  sign(context: string, payload: Uint8Array): string {
    return b64url(sign(null, signingInput(context, payload), this.key.privateKey));
  }

  /** Signature over `signingInput(context, UTF-8 of text)`. */
  signText(context: string, text: string): string {
    return this.sign(context, new TextEncoder().encode(text));
  }
}
