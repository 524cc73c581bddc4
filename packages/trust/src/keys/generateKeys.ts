import { createOperator, createUser } from '@nats-io/nkeys';

/**
 * What a key is for; it decides the NKey prefix: `U` (user) for nodes, routers and operators, so the same
 * key can also be their NATS identity; `O` for issuers, which sign node credentials and nothing else.
 */
export type KeyRole = 'node' | 'router' | 'operator' | 'issuer';

/** A fresh key pair: the seed (secret) and its public key. */
export interface GeneratedKey {
  readonly seed: string;
  readonly publicKey: string;
}

/** Generates an NKey pair for `role` (NKeys' own generator, from the platform's random source). */
export function generateKey(role: KeyRole): GeneratedKey {
  const pair = role === 'issuer' ? createOperator() : createUser();
  return { seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
}
