import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { AgentSecurityOptions } from '@flotilla/agent';
import type { RouterSecurityOptions } from '@flotilla/router';
import { parsePublicKeys, readSeedFile } from '@flotilla/trust';

const repeat = (v: string, p: string[] = []): string[] => [...p, ...parsePublicKeys(v)];
const envKeys = (name: string): string[] | undefined => (process.env[name] ? parsePublicKeys(process.env[name]!) : undefined);
const truthy = (v: string | undefined): boolean => v === '1' || v === 'true';

/** `--insecure`: run with protections off, said at start. */
function insecureOption(): Option {
  return new Option('--insecure', 'run with the missing protections off instead of refusing to start (logged at start; for local trials and tests)').default(truthy(process.env.FLOTILLA_INSECURE));
}

/** The agent's key flags as commander parses them. */
export interface AgentSecurityFlags {
  nodeSeedFile?: string;
  nodeCredentialFile?: string;
  operatorKey?: string[];
  operatorKeysFile?: string;
  meshKey?: string[];
  meshKeysFile?: string;
  openMetrics?: boolean;
  insecure: boolean;
}

/** Adds the agent's key flags (each with its `FLOTILLA_*` variable). */
export function withAgentSecurityFlags(command: Command): Command {
  return command
    .option('--node-seed-file <file>', 'NKey seed of this node: signs its record and reports (FLOTILLA_NODE_SEED_FILE)', process.env.FLOTILLA_NODE_SEED_FILE)
    .option('--node-credential-file <file>', "the operator-issued credential of this node's key (FLOTILLA_NODE_CREDENTIAL_FILE)", process.env.FLOTILLA_NODE_CREDENTIAL_FILE)
    .option('--operator-key <key>', 'operator public key whose signed control requests (drain, status) this node obeys; repeatable (FLOTILLA_OPERATOR_KEYS)', repeat, envKeys('FLOTILLA_OPERATOR_KEYS'))
    .option('--operator-keys-file <file>', 'file of operator public keys, re-read when it changes (FLOTILLA_OPERATOR_KEYS_FILE)', process.env.FLOTILLA_OPERATOR_KEYS_FILE)
    .option('--mesh-key <key>', 'router mesh public key whose tokens this node accepts; repeatable (FLOTILLA_MESH_KEYS)', repeat, envKeys('FLOTILLA_MESH_KEYS'))
    .option('--mesh-keys-file <file>', 'file of router mesh public keys, re-read when it changes (FLOTILLA_MESH_KEYS_FILE)', process.env.FLOTILLA_MESH_KEYS_FILE)
    .option('--open-metrics', 'serve /metrics without a mesh token (a scraper on a trusted network)', truthy(process.env.FLOTILLA_OPEN_METRICS))
    .addOption(insecureOption());
}

/** The agent's security options from its flags; throws naming what is missing unless `--insecure`. */
export function agentSecurityOf(o: AgentSecurityFlags): AgentSecurityOptions {
  const missing: string[] = [];
  if (!o.nodeSeedFile || !o.nodeCredentialFile) missing.push('a node key (--node-seed-file and --node-credential-file)');
  if (!o.operatorKey?.length && !o.operatorKeysFile) missing.push('operator keys (--operator-key or --operator-keys-file)');
  if (!o.meshKey?.length && !o.meshKeysFile) missing.push('router mesh keys (--mesh-key or --mesh-keys-file)');
  if (missing.length > 0 && !o.insecure) {
    throw new Error(`refusing to start without ${missing.join(', ')}; make them with "flotilla keys", or pass --insecure (FLOTILLA_INSECURE=1) to run with those protections off`);
  }
  return {
    ...(o.nodeSeedFile && o.nodeCredentialFile ? { nodeSeed: readSeedFile(o.nodeSeedFile), nodeCredential: readCredential(o.nodeCredentialFile) } : {}),
    ...(o.operatorKey?.length ? { operatorKeys: o.operatorKey } : {}),
    ...(o.operatorKeysFile ? { operatorKeysFile: o.operatorKeysFile } : {}),
    ...(o.meshKey?.length ? { meshKeys: o.meshKey } : {}),
    ...(o.meshKeysFile ? { meshKeysFile: o.meshKeysFile } : {}),
    ...(o.openMetrics ? { openMetrics: true } : {}),
  };
}

function readCredential(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the node credential file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The router's key flags as commander parses them. */
export interface RouterSecurityFlags {
  trustedIssuer?: string[];
  trustedIssuersFile?: string;
  allowUnsignedNodes?: boolean;
  meshSeedFile?: string;
  insecure: boolean;
}

/** Adds the router's key flags (each with its `FLOTILLA_*` variable). */
export function withRouterSecurityFlags(command: Command): Command {
  return command
    .option('--trusted-issuer <key>', 'public key of an issuer whose node credentials are trusted; repeatable (FLOTILLA_TRUSTED_ISSUERS)', repeat, envKeys('FLOTILLA_TRUSTED_ISSUERS'))
    .option('--trusted-issuers-file <file>', 'file of trusted issuer public keys, re-read when it changes (FLOTILLA_TRUSTED_ISSUERS_FILE)', process.env.FLOTILLA_TRUSTED_ISSUERS_FILE)
    .option('--allow-unsigned-nodes', 'also accept unsigned node records and reports (opt-out, e.g. while agents are upgraded; FLOTILLA_ALLOW_UNSIGNED_NODES=1)', truthy(process.env.FLOTILLA_ALLOW_UNSIGNED_NODES))
    .option('--mesh-seed-file <file>', 'NKey seed of the mesh key that signs the tokens agents require, re-read when it changes (FLOTILLA_MESH_SEED_FILE)', process.env.FLOTILLA_MESH_SEED_FILE)
    .addOption(insecureOption());
}

/** The router's security options from its flags; throws naming what is missing unless `--insecure`. */
export function routerSecurityOf(o: RouterSecurityFlags): RouterSecurityOptions {
  const missing: string[] = [];
  if (!o.trustedIssuer?.length && !o.trustedIssuersFile && !o.allowUnsignedNodes) missing.push('trusted issuers (--trusted-issuer or --trusted-issuers-file), or the explicit --allow-unsigned-nodes');
  if (!o.meshSeedFile) missing.push('a mesh key (--mesh-seed-file)');
  if (missing.length > 0 && !o.insecure) {
    throw new Error(`refusing to start without ${missing.join(', ')}; make them with "flotilla keys", or pass --insecure (FLOTILLA_INSECURE=1) to run with those protections off`);
  }
  return {
    ...(o.trustedIssuer?.length ? { issuers: o.trustedIssuer } : {}),
    ...(o.trustedIssuersFile ? { issuersFile: o.trustedIssuersFile } : {}),
    ...(o.allowUnsignedNodes ? { allowUnsigned: true } : {}),
    ...(o.meshSeedFile ? { meshSeedFile: o.meshSeedFile } : {}),
  };
}
