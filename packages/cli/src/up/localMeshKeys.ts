import { rmSync } from 'node:fs';
import { createLocalKeySet, type LocalKeySet } from '@flotilla/trust';

/**
 * The local mesh's keys, made fresh at every `flotilla up` (in `<dir>/keys`, seeds mode 0600): an issuer
 * and a credential per node, an operator key for `flotilla drain`, the router's mesh key. The local mesh
 * so runs the same checks as a production one; only NATS stays open (a local nats-server).
 */
export function localMeshKeys(dir: string, nodeIds: readonly string[]): LocalKeySet {
  rmSync(dir, { recursive: true, force: true });
  return createLocalKeySet(dir, nodeIds);
}

/** Router flags for the local key set. */
export function routerKeyArgs(keys: LocalKeySet): string[] {
  return ['--trusted-issuers-file', keys.issuersFile, '--mesh-seed-file', keys.mesh.seedFile];
}

/** Agent flags for one node of the local key set. */
export function agentKeyArgs(keys: LocalKeySet, nodeId: string): string[] {
  const node = keys.nodes.get(nodeId);
  if (!node) throw new Error(`no key for node ${nodeId}`);
  return ['--node-seed-file', node.seedFile, '--node-credential-file', node.credentialFile, '--operator-keys-file', keys.operatorsFile, '--mesh-keys-file', keys.meshKeysFile];
}
