import { createOperator, createUser } from '@nats-io/nkeys';

/** What a key is for; it decides the NKey prefix: `U` for nodes and routers (also usable as NATS users), `O` for operators and issuers. */
export type KeyRole = 'node' | 'router' | 'operator' | 'issuer';

/** A fresh key pair: the seed (secret) and its public key. */
export interface GeneratedKey {
  readonly seed: string;
  readonly publicKey: string;
}

/** Generates an NKey pair for `role` (NKeys' own generator, from the platform's random source). */
export function generateKey(role: KeyRole): GeneratedKey {
  const pair = role === 'operator' || role === 'issuer' ? createOperator() : createUser();
  return { seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
}
