import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { NodeIdSchema } from '@flotilla/protocol';
import { Signer, createLocalKeySet, generateKey, issueNodeCredential, parsePublicKeys, readSeedFile, type KeyRole } from '@flotilla/trust';
import { parsePositiveInt } from '../options.js';

const ROLES: KeyRole[] = ['node', 'router', 'operator', 'issuer'];

function nodeId(value: string, previous: string[] = []): string[] {
  if (!NodeIdSchema.safeParse(value).success) throw new InvalidArgumentError(`"${value}" is not a node id (letters, digits, "_" and "-")`);
  return [...previous, value];
}

/** `flotilla keys gen|issue|init`: the keys and credentials of a mesh (NKeys; the seeds are secrets, written 0600). */
export function addMeshKeyCommands(keys: Command): Command {
  keys
    .command('gen')
    .description('generate a key pair; prints the public key, writes the seed to --out (or prints it)')
    .addOption(new Option('--role <role>', 'what the key is for').choices(ROLES).makeOptionMandatory())
    .option('--out <file>', 'write the seed here (mode 0600) instead of printing it')
    .action((o: { role: KeyRole; out?: string }) => {
      const key = generateKey(o.role);
      if (o.out) writeFileSync(o.out, `${key.seed}\n`, { mode: 0o600 });
      else process.stdout.write(`seed   ${key.seed}\n`);
      process.stdout.write(`public ${key.publicKey}\n`);
    });
  keys
    .command('issue')
    .description("issue a node credential: binds a node's public key to its node id, signed by an issuer key")
    .requiredOption('--issuer-seed-file <file>', 'the issuer seed')
    .requiredOption('--node-id <id>', 'node id', (v: string) => nodeId(v)[0]!)
    .option('--node-key <key>', "the node's public key")
    .option('--node-seed-file <file>', "or the node's seed file, to take its public key from")
    .option('--ttl-days <days>', 'expiry in days (default: none; the credential lasts while its issuer is trusted)', parsePositiveInt)
    .option('--out <file>', 'write the credential here instead of printing it')
    .action((o: { issuerSeedFile: string; nodeId: string; nodeKey?: string; nodeSeedFile?: string; ttlDays?: number; out?: string }) => {
      const nodeKey = o.nodeKey ? parsePublicKeys(o.nodeKey)[0] : o.nodeSeedFile ? new Signer(readSeedFile(o.nodeSeedFile)).publicKey : undefined;
      if (!nodeKey) throw new Error('give --node-key or --node-seed-file');
      const credential = issueNodeCredential(readSeedFile(o.issuerSeedFile), { nodeId: o.nodeId, nodeKey, ...(o.ttlDays ? { ttlSeconds: o.ttlDays * 86_400 } : {}) });
      if (o.out) writeFileSync(o.out, `${credential}\n`);
      else process.stdout.write(`${credential}\n`);
    });
  keys
    .command('init')
    .description('make a complete key set for a mesh in <dir>: issuer, operator, router mesh key, one key and credential per --node')
    .argument('<dir>', 'directory to write to')
    .requiredOption('--node <id>', 'node id (repeatable)', nodeId)
    .action((dir: string, o: { node: string[] }) => {
      const set = createLocalKeySet(dir, o.node);
      process.stdout.write(
        [
          `keys written to ${dir} (seeds are secrets: mode 0600)`,
          `  issuer    ${set.issuer.publicKey}  seed ${set.issuer.seedFile}  (routers: --trusted-issuers-file ${set.issuersFile})`,
          `  operator  ${set.operator.publicKey}  seed ${set.operator.seedFile}  (agents: --operator-keys-file ${set.operatorsFile}; flotilla drain --operator-seed-file)`,
          `  mesh      ${set.mesh.publicKey}  seed ${set.mesh.seedFile}  (router: --mesh-seed-file; agents: --mesh-keys-file ${set.meshKeysFile})`,
          ...[...set.nodes].map(([id, n]) => `  ${id.padEnd(9)} ${n.publicKey}  --node-seed-file ${n.seedFile} --node-credential-file ${n.credentialFile}`),
          '',
        ].join('\n'),
      );
    });
  return keys;
}
