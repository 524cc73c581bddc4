import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ApiKeyFileSchema, createApiKey, parseKeyFile } from '@flotilla/router';

const repeat = (v: string, p: string[] = []): string[] => [...p, v];

/** `flotilla keys create|revoke`: API keys for machine clients of the router (stored hashed). */
export function addApiKeyCommands(keys: Command): Command {
  keys
    .command('create')
    .description('create an API key: prints the key once and stores only its SHA-256 in the file')
    .requiredOption('--file <path>', 'the API key file (created when missing)')
    .requiredOption('--subject <name>', 'who the key is for (the identity the policy and logs see)')
    .option('--role <role>', 'a role of the key (repeatable)', repeat)
    .option('--scope <scope>', 'a scope of the key (repeatable)', repeat)
    .option('--label <label>', 'metrics label for its calls')
    .option('--expires-at <iso>', 'refuse the key after this instant (ISO 8601)')
    .action(async (o: { file: string; subject: string; role?: string[]; scope?: string[]; label?: string; expiresAt?: string }) => {
      const existing = await readFile(o.file, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
      const doc = existing === undefined ? { keys: [] as unknown[] } : ApiKeyFileSchema.parse(JSON.parse(existing));
      if (existing !== undefined) parseKeyFile(existing, o.file);
      const created = createApiKey({ subject: o.subject, roles: o.role ?? [], scopes: o.scope ?? [], ...(o.label ? { label: o.label } : {}), ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}) });
      const next = ApiKeyFileSchema.parse({ keys: [...doc.keys, created.entry] });
      // Written whole, then renamed, so the router never reads half a file.
      const tmp = `${o.file}.${process.pid}.tmp`;
      await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, o.file);
      process.stderr.write(`created key ${created.entry.id} for ${o.subject} in ${o.file}; it is shown only now:\n`);
      process.stdout.write(`${created.key}\n`);
    });
  keys
    .command('revoke')
    .description('disable an API key by id')
    .requiredOption('--file <path>', 'the API key file')
    .argument('<id>', 'the key id (the part after "flt_")')
    .action(async (id: string, o: { file: string }) => {
      const doc = ApiKeyFileSchema.parse(JSON.parse(await readFile(o.file, 'utf8')));
      const entry = doc.keys.find((k) => k.id === id);
      if (!entry) throw new Error(`no key ${id} in ${o.file}`);
      entry.disabled = true;
      const tmp = `${o.file}.${process.pid}.tmp`;
      await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, o.file);
      process.stderr.write(`disabled key ${id}\n`);
    });
  return keys;
}
