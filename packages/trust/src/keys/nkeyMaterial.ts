import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { Prefix, fromSeed } from '@nats-io/nkeys';
import { Codec } from '@nats-io/nkeys/lib/codec.js';
import { NKeyPublicSchema } from '@flotilla/protocol';

/** Role prefixes of the NKey public keys Flotilla accepts (by their first character). */
const PUBLIC_PREFIXES: Readonly<Record<string, Prefix>> = { U: Prefix.User, O: Prefix.Operator, A: Prefix.Account, N: Prefix.Server };

/** Thrown for a seed or public key that is not a valid NKey; the message never contains the seed. */
export class KeyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFormatError';
  }
}

/** An NKey seed decoded into a Node.js private key, with its public key. */
export interface SeedKey {
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

/**
 * Decodes an NKey seed (`S…`, as `nk -gen user` or `flotilla keys gen` print it) into a Node.js ed25519
 * private key. NKeys decodes and checks the seed (prefix, CRC); signing then goes through Node's crypto,
 * ~200 times faster than the NKeys library's pure-JavaScript ed25519 (measured in docs/security.md).
 */
export function keyFromSeed(seed: string): SeedKey {
  const text = seed.trim();
  let publicKey: string;
  let raw: Uint8Array;
  try {
    const pair = fromSeed(new TextEncoder().encode(text));
    publicKey = pair.getPublicKey();
    raw = Codec.decodeSeed(new TextEncoder().encode(text)).buf;
  } catch {
    throw new KeyFormatError('not an NKey seed (expected 58 characters of base32 starting with "S")');
  }
  const x = publicKeyBytes(publicKey);
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x), d: b64url(raw) }, format: 'jwk' });
  return { publicKey, privateKey };
}

/** Decodes an NKey public key into a Node.js ed25519 public key; throws {@link KeyFormatError}. */
export function keyFromPublic(publicKey: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKeyBytes(publicKey)) }, format: 'jwk' });
}

/** The 32 raw bytes of an NKey public key, checked (prefix, length, CRC). */
function publicKeyBytes(publicKey: string): Uint8Array {
  if (!NKeyPublicSchema.safeParse(publicKey).success) throw new KeyFormatError(`"${publicKey.slice(0, 60)}" is not an NKey public key`);
  const prefix = PUBLIC_PREFIXES[publicKey[0]!]!;
  try {
    return Codec.decode(prefix, new TextEncoder().encode(publicKey));
  } catch {
    throw new KeyFormatError(`"${publicKey}" is not a valid NKey public key (bad checksum)`);
  }
}

/** base64url without padding. */
export function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}
