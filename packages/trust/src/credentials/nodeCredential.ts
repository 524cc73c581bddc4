import { NODE_CREDENTIAL_CONTEXT, NodeCredentialClaimsSchema, NodeCredentialSchema, PROTOCOL_VERSION, type NodeCredentialClaims } from '@flotilla/protocol';
import { Signer } from '../signing/Signer.js';
import type { SignatureVerifier } from '../signing/SignatureVerifier.js';

/** What to put in a node credential. */
export interface NodeCredentialRequest {
  nodeId: string;
  /** The node's public key. */
  nodeKey: string;
  /** Lifetime, seconds; omitted = no expiry (the credential lasts while its issuer is trusted). */
  ttlSeconds?: number;
  /** Issue time, epoch ms (default now). */
  now?: number;
}

/** Issues a node credential (see `NodeCredentialSchema`) signed with the issuer's seed. */
export function issueNodeCredential(issuerSeed: string, request: NodeCredentialRequest): string {
  const issuer = new Signer(issuerSeed);
  const iat = Math.floor((request.now ?? Date.now()) / 1000);
  const claims: NodeCredentialClaims = {
    v: PROTOCOL_VERSION,
    typ: 'flotilla/node',
    nodeId: request.nodeId,
    nodeKey: request.nodeKey,
    iss: issuer.publicKey,
    iat,
    ...(request.ttlSeconds !== undefined ? { exp: iat + request.ttlSeconds } : {}),
  };
  const parsed = NodeCredentialClaimsSchema.parse(claims);
  const body = Buffer.from(JSON.stringify(parsed), 'utf8');
  return `${body.toString('base64url')}.${issuer.sign(NODE_CREDENTIAL_CONTEXT, body)}`;
}

/** Outcome of checking a credential. */
export type CredentialCheck = { ok: true; claims: NodeCredentialClaims } | { ok: false; reason: string };

/**
 * Checks a node credential: well formed, signed by one of `issuers`, for `nodeId` and `nodeKey`, and not
 * expired at `now` (epoch ms). Never throws.
 */
export function checkNodeCredential(
  credential: string,
  expected: { nodeId: string; nodeKey: string },
  issuers: ReadonlySet<string>,
  verifier: SignatureVerifier,
  now: number,
): CredentialCheck {
  if (!NodeCredentialSchema.safeParse(credential).success) return { ok: false, reason: 'malformed credential' };
  const dot = credential.indexOf('.');
  const body = Buffer.from(credential.slice(0, dot), 'base64url');
  let claims: NodeCredentialClaims;
  try {
    const parsed = NodeCredentialClaimsSchema.safeParse(JSON.parse(body.toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'malformed credential claims' };
    claims = parsed.data;
  } catch {
    return { ok: false, reason: 'malformed credential claims' };
  }
  if (!issuers.has(claims.iss)) return { ok: false, reason: `credential issuer ${claims.iss} is not trusted` };
  if (!verifier.verify(claims.iss, NODE_CREDENTIAL_CONTEXT, body, credential.slice(dot + 1))) return { ok: false, reason: 'credential signature invalid' };
  if (claims.nodeId !== expected.nodeId) return { ok: false, reason: `credential is for node ${claims.nodeId}` };
  if (claims.nodeKey !== expected.nodeKey) return { ok: false, reason: 'credential is for another key' };
  if (claims.exp !== undefined && claims.exp * 1000 <= now) return { ok: false, reason: 'credential expired' };
  return { ok: true, claims };
}
