import { recordSigningContext, type NodeRecord } from '@flotilla/protocol';
import type { SignatureVerifier } from '../signing/SignatureVerifier.js';
import { checkNodeCredential } from './nodeCredential.js';

/** The signature of a stored record: the canonical JSON it covers (as the registry stored it) and the signature. */
export interface RecordProof {
  readonly signed: string;
  readonly sig: string;
}

/** Which records a router accepts. */
export interface NodeTrustPolicy {
  /** Public keys of the issuers whose node credentials are trusted (read on every check: the list may change). */
  readonly issuers: () => ReadonlySet<string>;
  /** Accept records without a signature (the operator's explicit opt-out, e.g. during an upgrade). */
  readonly allowUnsigned: boolean;
}

/** A record's verdict: accepted (with the node key its reports must be signed with, if signed) or refused. */
export type RecordVerdict = { ok: true; nodeKey: string | undefined } | { ok: false; reason: string };

interface CachedVerdict {
  readonly proofKey: string;
  readonly verdict: RecordVerdict;
  /** Credential expiry, epoch ms. */
  readonly expiresAt: number | undefined;
  /** The credential's issuer: a remembered verdict holds only while it is still trusted. */
  readonly issuer: string | undefined;
}

/**
 * Decides whether a router trusts a node record: it must be signed by the key it names (`nodeKey`) and
 * carry a credential from a trusted issuer that binds that key to the record's node id. The last verdict
 * per node is remembered while the record and its signature stay the same (heartbeats do not cost a
 * verification); {@link forget} drops a node that left, so the memory is bounded by the live view.
 */
export class NodeRecordTrust {
  private readonly verdicts = new Map<string, CachedVerdict>();

  constructor(
    private readonly deps: { policy: NodeTrustPolicy; verifier: SignatureVerifier; now?: () => number },
  ) {}

  /** Whether unsigned records pass (the opt-out). */
  get allowsUnsigned(): boolean {
    return this.deps.policy.allowUnsigned;
  }

  check(record: NodeRecord, proof: RecordProof | undefined): RecordVerdict {
    const { policy } = this.deps;
    if (!record.nodeKey || !record.credential || !proof) {
      return policy.allowUnsigned ? { ok: true, nodeKey: undefined } : { ok: false, reason: 'unsigned record (no node key, credential or signature)' };
    }
    const issuers = policy.issuers();
    if (issuers.size === 0) return policy.allowUnsigned ? { ok: true, nodeKey: undefined } : { ok: false, reason: 'no trusted issuers configured' };
    const now = (this.deps.now ?? Date.now)();
    // The signed text is part of the key: a copied signature on other content must not hit the cache.
    const proofKey = `${proof.sig}|${record.credential}|${proof.signed}`;
    const cached = this.verdicts.get(record.nodeId);
    if (cached && cached.proofKey === proofKey && (cached.expiresAt === undefined || cached.expiresAt > now) && (cached.issuer === undefined || issuers.has(cached.issuer))) {
      return cached.verdict;
    }
    const credential = checkNodeCredential(record.credential, { nodeId: record.nodeId, nodeKey: record.nodeKey }, issuers, this.deps.verifier, now);
    let verdict: RecordVerdict;
    if (!credential.ok) verdict = { ok: false, reason: credential.reason };
    else if (!this.deps.verifier.verifyText(record.nodeKey, recordSigningContext(record.nodeId), proof.signed, proof.sig)) verdict = { ok: false, reason: 'record signature invalid' };
    else verdict = { ok: true, nodeKey: record.nodeKey };
    const exp = credential.ok && credential.claims.exp !== undefined ? credential.claims.exp * 1000 : undefined;
    this.verdicts.set(record.nodeId, { proofKey, verdict, expiresAt: exp, issuer: credential.ok ? credential.claims.iss : undefined });
    return verdict;
  }

  /** Forgets a node (it left the view). */
  forget(nodeId: string): void {
    this.verdicts.delete(nodeId);
  }
}
