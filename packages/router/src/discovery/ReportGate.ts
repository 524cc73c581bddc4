import type { SignatureVerifier } from '@flotilla/trust';
import type { NodeKeyDirectory } from './NodeKeyDirectory.js';

/** Why a report was let in or dropped. */
export type ReportAdmission = 'ok' | 'unknown-node' | 'unsigned' | 'bad-signature';

/**
 * Admits a NATS report (load, progress, event) before it is even parsed: its node must be in the accepted
 * registry view, and, when that node's record is signed, the message must carry the node's signature over
 * its subject and payload (`Flotilla-Sig`). ~80 µs per signed report (one ed25519 verify).
 */
export class ReportGate {
  constructor(private readonly deps: { keys: NodeKeyDirectory; verifier: SignatureVerifier }) {}

  admit(nodeId: string, subject: string, payload: Uint8Array, signature: string | undefined): ReportAdmission {
    const key = this.deps.keys.keyOf(nodeId);
    if (key === undefined) return 'unknown-node';
    if (key === null) return 'ok';
    if (!signature) return 'unsigned';
    return this.deps.verifier.verify(key, subject, payload, signature) ? 'ok' : 'bad-signature';
  }
}
