import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueNodeCredential } from '../credentials/nodeCredential.js';
import { generateKey, type GeneratedKey } from '../keys/generateKeys.js';

/** Files of one node's identity. */
export interface NodeKeyFiles {
  readonly publicKey: string;
  /** The node's NKey seed (signs its record and reports). */
  readonly seedFile: string;
  /** The credential binding the node key to the node id. */
  readonly credentialFile: string;
}

/** A complete set of keys for a mesh, written to a directory (mode 0600 for secrets). */
export interface LocalKeySet {
  readonly dir: string;
  readonly issuer: GeneratedKey & { seedFile: string };
  readonly operator: GeneratedKey & { seedFile: string };
  readonly mesh: GeneratedKey & { seedFile: string };
  /** Public keys files: issuers (for routers), operators and mesh keys (for agents). */
  readonly issuersFile: string;
  readonly operatorsFile: string;
  readonly meshKeysFile: string;
  readonly nodes: ReadonlyMap<string, NodeKeyFiles>;
  /** Issues (or re-issues) a node's key and credential into the set's directory. */
  addNode(nodeId: string): NodeKeyFiles;
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, `${text}\n`, { mode: 0o600 });
}

/**
 * Generates a mesh's keys into `dir`: an issuer (signs node credentials), an operator key (signs control
 * requests), a router mesh key (signs the tokens agents require) and one key plus credential per node. What
 * `flotilla up` makes at start for the local mesh, and what tests use; production keys are made the same
 * way with `flotilla keys` and kept by the operator.
 */
export function createLocalKeySet(dir: string, nodeIds: readonly string[], options: { credentialTtlSeconds?: number } = {}): LocalKeySet {
  mkdirSync(join(dir, 'nodes'), { recursive: true, mode: 0o700 });
  const keyed = (name: string, role: Parameters<typeof generateKey>[0]): GeneratedKey & { seedFile: string } => {
    const key = generateKey(role);
    const seedFile = join(dir, `${name}.nk`);
    writeSecret(seedFile, key.seed);
    return { ...key, seedFile };
  };
  const issuer = keyed('issuer', 'issuer');
  const operator = keyed('operator', 'operator');
  const mesh = keyed('mesh', 'router');
  const issuersFile = join(dir, 'issuers.pub');
  const operatorsFile = join(dir, 'operators.pub');
  const meshKeysFile = join(dir, 'mesh.pub');
  writeFileSync(issuersFile, `${issuer.publicKey}\n`);
  writeFileSync(operatorsFile, `${operator.publicKey}\n`);
  writeFileSync(meshKeysFile, `${mesh.publicKey}\n`);
  const nodes = new Map<string, NodeKeyFiles>();
  const addNode = (nodeId: string): NodeKeyFiles => {
    const key = generateKey('node');
    const seedFile = join(dir, 'nodes', `${nodeId}.nk`);
    const credentialFile = join(dir, 'nodes', `${nodeId}.cred`);
    writeSecret(seedFile, key.seed);
    const credential = issueNodeCredential(issuer.seed, { nodeId, nodeKey: key.publicKey, ...(options.credentialTtlSeconds ? { ttlSeconds: options.credentialTtlSeconds } : {}) });
    writeFileSync(credentialFile, `${credential}\n`);
    const files = { publicKey: key.publicKey, seedFile, credentialFile };
    nodes.set(nodeId, files);
    return files;
  };
  for (const id of nodeIds) addNode(id);
  return { dir, issuer, operator, mesh, issuersFile, operatorsFile, meshKeysFile, nodes, addNode };
}
