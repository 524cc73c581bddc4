import type { RegisteredNode } from '@flotilla/registry';

/** A registry record's verdict: accepted (with the key its reports are signed with, null when unsigned) or refused. */
export type NodeVerdict = { ok: true; nodeKey: string | null } | { ok: false; reason: string };

/** Decides which registered nodes this router accepts (signed records from credentialed nodes, or anything under the opt-out). */
export interface NodeTrust {
  check(node: RegisteredNode): NodeVerdict;
  /** The node left the view. */
  forget(nodeId: string): void;
}
