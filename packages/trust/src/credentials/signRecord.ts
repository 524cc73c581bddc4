import { canonicalJson, recordSigningContext, type NodeRecord } from '@flotilla/protocol';
import type { Signer } from '../signing/Signer.js';

/** A node's signature over its registry record (the canonical JSON of the record, as it will be stored). */
export function signRecord(signer: Signer, record: NodeRecord): string {
  return signer.signText(recordSigningContext(record.nodeId), canonicalJson(record));
}
