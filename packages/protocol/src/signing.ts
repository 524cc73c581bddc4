import { z } from 'zod';

/**
 * Public half of an NKey (ed25519): 56 characters of base32, the first naming the role (`U` user/node,
 * `O` operator, `A` account, `N` server). Flotilla decides what a key may do by the list it is in, not
 * by its prefix.
 */
export const NKeyPublicSchema = z.string().regex(/^[UOAN][A-Z2-7]{55}$/, 'not an NKey public key (56 characters of base32 starting with U, O, A or N)');
export type NKeyPublic = z.infer<typeof NKeyPublicSchema>;

/** An ed25519 signature: 64 bytes, base64url without padding. */
export const SignatureSchema = z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'not an ed25519 signature (86 characters of base64url)');

/** NATS header carrying the signature of a message (load, progress, event, control request). */
export const SIGNATURE_HEADER = 'Flotilla-Sig';
/** NATS header naming the public key that signed a control request (reports are checked against the node's record instead). */
export const SIGNER_HEADER = 'Flotilla-Signer';

/**
 * What a signature covers: the UTF-8 `context`, a line feed, then the payload bytes. The context binds a
 * signature to one use: a NATS message is signed with its subject as the context (so a load report cannot
 * be replayed as an event, nor one node's report on another node's subject), a registry record with
 * {@link recordSigningContext}, a node credential with {@link NODE_CREDENTIAL_CONTEXT}.
 */
export function signingInput(context: string, payload: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`${context}\n`);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** Signing context of a node's registry record. */
export function recordSigningContext(nodeId: string): string {
  return `flotilla.v1.record.${nodeId}`;
}

/** Signing context of a node credential. */
export const NODE_CREDENTIAL_CONTEXT = 'flotilla.v1.node-credential';

/**
 * JSON with object keys sorted at every level and `undefined` members left out, so one value always gives
 * one text: what a registry record signature covers (the record as the writer stored it, before any reader
 * applies defaults or drops fields it does not know).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
