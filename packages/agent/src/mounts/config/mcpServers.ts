import { ServerNameSchema } from '@flotilla/protocol';
import { z } from 'zod';
import { issuePath } from '../../AgentOptions.js';
import { ServerSpecSchema, type ServerSpec } from '../MountSpecs.js';
import { expandEnv } from './expandEnv.js';

/**
 * Flotilla's own settings of one entry, under the entry's `flotilla` key so the file stays readable by
 * every other client of the standard shape (they ignore keys they do not know).
 */
const FlotillaEntrySchema = z.strictObject({
  sessions: z.unknown().optional(),
  pool: z.unknown().optional(),
  startupTimeoutMs: z.unknown().optional(),
  restart: z.unknown().optional(),
  affinity: z.unknown().optional(),
  timeoutMs: z.unknown().optional(),
  bearerTokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable').optional(),
});

/**
 * One entry of the standard `mcpServers` map, as Claude Desktop, Cursor and FastMCP's `as_proxy(config)`
 * read it: `command`/`args`/`env`/`cwd` for a stdio server, or `url`/`headers`/`transport` (or `type`) for
 * a remote one; plus `module` for a server module the agent hosts, `disabled`, and `flotilla` settings.
 * Keys this reader does not know are ignored (other clients put theirs in the same file).
 */
export const McpServerEntrySchema = z.looseObject({
  command: z.string().optional(),
  args: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  url: z.string().optional(),
  transport: z.string().optional(),
  type: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  module: z.string().optional(),
  exportName: z.string().optional(),
  disabled: z.boolean().optional(),
  flotilla: FlotillaEntrySchema.optional(),
});
export type McpServerEntry = z.infer<typeof McpServerEntrySchema>;

/** The `mcpServers` map: server name → entry. */
export const McpServersSchema = z.record(z.string(), McpServerEntrySchema);
export type McpServers = z.infer<typeof McpServersSchema>;

/** One problem of a config file, with the path of the field it is about (`mcpServers.search.headers.Authorization`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** The server specs of an `mcpServers` map, or every problem found in it. */
export type McpServersResult = { ok: true; specs: ServerSpec[] } | { ok: false; issues: ConfigIssue[] };

/** Spec fields that come from an entry's `flotilla` block (issue paths point there). */
const FLOTILLA_KEYS = new Set(['sessions', 'pool', 'startupTimeoutMs', 'restart', 'affinity', 'timeoutMs']);

/** Which `flotilla` settings each kind of entry takes. */
const APPLIES: Readonly<Record<'module' | 'stdio' | 'remote', readonly string[]>> = {
  module: ['affinity'],
  stdio: ['sessions', 'pool', 'startupTimeoutMs', 'restart', 'affinity'],
  remote: ['timeoutMs', 'affinity'],
};

const TRANSPORTS: Readonly<Record<string, 'stdio' | 'streamable-http' | 'sse'>> = {
  stdio: 'stdio',
  http: 'streamable-http',
  'streamable-http': 'streamable-http',
  streamableHttp: 'streamable-http',
  streamable_http: 'streamable-http',
  sse: 'sse',
};

/**
 * Turns an `mcpServers` map into server specs: each key is the server's name (its tool namespace), and
 * `${NAME}` / `${env:NAME}` in `command`, `args`, `env`, `cwd`, `url` and `headers` take their value from
 * `env` (an unset variable is an error). `flotilla.bearerTokenEnv` adds `Authorization: Bearer <value>`.
 * Every problem is reported with the path of its field; `disabled` entries are left out.
 */
export function serverSpecsFromMcpServers(raw: unknown, env: NodeJS.ProcessEnv, root = 'mcpServers'): McpServersResult {
  const parsed = z.record(z.string(), z.unknown()).safeParse(raw);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.map((i) => ({ path: issuePath(i.path, root), message: i.message })) };
  const issues: ConfigIssue[] = [];
  const specs: ServerSpec[] = [];
  // Each entry is checked on its own, so one run reports the problems of all of them.
  for (const [name, rawEntry] of Object.entries(parsed.data)) {
    const at = (...path: Array<string | number>): string => issuePath([name, ...path], root);
    const shaped = McpServerEntrySchema.safeParse(rawEntry);
    if (!shaped.success) {
      for (const i of shaped.error.issues) issues.push({ path: at(...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))), message: i.message });
      continue;
    }
    const entry = shaped.data;
    if (entry.disabled) continue;
    const named = ServerNameSchema.safeParse(name);
    if (!named.success) {
      issues.push({ path: at(), message: `"${name}" is no server name: ${named.error.issues[0]?.message ?? 'invalid'} (it becomes the tool namespace, as in ${'<server>_<tool>'}; at most 48 characters)` });
      continue;
    }
    const spec = entrySpec(name, entry, env, (path, message) => issues.push({ path: at(...path), message }));
    if (!spec) continue;
    const checked = ServerSpecSchema.safeParse(spec);
    if (!checked.success) {
      for (const i of checked.error.issues) {
        const path = i.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
        issues.push({ path: at(...(FLOTILLA_KEYS.has(String(path[0])) ? ['flotilla', ...path] : path)), message: i.message });
      }
      continue;
    }
    specs.push(spec);
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, specs };
}

type Report = (path: Array<string | number>, message: string) => void;

/** The spec of one entry (values expanded), or undefined after reporting why not. */
function entrySpec(name: string, entry: McpServerEntry, env: NodeJS.ProcessEnv, report: Report): ServerSpec | undefined {
  const kinds = (['module', 'command', 'url'] as const).filter((k) => entry[k] !== undefined);
  if (kinds.length !== 1) {
    report([], kinds.length === 0 ? 'give command (a stdio server), url (a remote server) or module (a server module)' : `give only one of ${kinds.join(', ')}`);
    return undefined;
  }
  const transportKey = entry.transport !== undefined ? 'transport' : 'type';
  const declared = entry.transport ?? entry.type;
  const transport = declared === undefined ? undefined : TRANSPORTS[declared];
  if (declared !== undefined && transport === undefined) {
    report([transportKey], `unknown transport "${declared}"; use one of ${Object.keys(TRANSPORTS).join(', ')}`);
    return undefined;
  }
  const ext = flotillaSettings(entry);
  const kind = kinds[0] === 'command' ? 'stdio' : kinds[0] === 'url' ? 'remote' : 'module';
  let failed = false;
  for (const key of Object.keys(ext)) {
    if (APPLIES[kind].includes(key)) continue;
    failed = true;
    const where = (Object.keys(APPLIES) as Array<keyof typeof APPLIES>).filter((k) => APPLIES[k].includes(key));
    report(['flotilla', key], `applies to ${where.join(' and ')} servers, not to this ${kind} server`);
  }
  const expand = (value: string, path: Array<string | number>): string => {
    const r = expandEnv(value, env);
    if (r.ok) return r.value;
    failed = true;
    report(path, `environment variable${r.missing.length > 1 ? 's' : ''} ${r.missing.join(', ')} ${r.missing.length > 1 ? 'are' : 'is'} not set`);
    return '';
  };
  if (entry.module !== undefined) return failed ? undefined : { name, module: entry.module, ...(entry.exportName ? { exportName: entry.exportName } : {}), ...pick(ext, ['affinity']) } as ServerSpec;
  if (entry.command !== undefined) {
    if (transport !== undefined && transport !== 'stdio') report([transportKey], `a server with command is a stdio server, not ${declared}`);
    const spec = {
      name,
      command: expand(entry.command, ['command']),
      ...(entry.args ? { args: entry.args.map((a, i) => expand(a, ['args', i])) } : {}),
      ...(entry.env ? { env: Object.fromEntries(Object.entries(entry.env).map(([k, v]) => [k, expand(v, ['env', k])])) } : {}),
      ...(entry.cwd !== undefined ? { cwd: expand(entry.cwd, ['cwd']) } : {}),
      ...pick(ext, ['sessions', 'pool', 'startupTimeoutMs', 'restart', 'affinity']),
    };
    return failed || (transport !== undefined && transport !== 'stdio') ? undefined : (spec as ServerSpec);
  }
  if (transport === 'stdio') report([transportKey], 'a server with url is a remote server, not stdio');
  const headers: Record<string, string> = Object.fromEntries(Object.entries(entry.headers ?? {}).map(([k, v]) => [k, expand(v, ['headers', k])]));
  const tokenEnv = entry.flotilla?.bearerTokenEnv;
  if (tokenEnv !== undefined) {
    const token = env[tokenEnv];
    if (token === undefined || token === '') {
      failed = true;
      report(['flotilla', 'bearerTokenEnv'], `environment variable ${tokenEnv} is not set`);
    } else if (Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
      failed = true;
      report(['flotilla', 'bearerTokenEnv'], 'headers already has Authorization; give the token one way');
    } else headers.Authorization = `Bearer ${token}`;
  }
  const spec = {
    name,
    url: expand(entry.url ?? '', ['url']),
    ...(transport !== undefined && transport !== 'stdio' ? { transport } : {}),
    headers,
    ...pick(ext, ['timeoutMs', 'affinity']),
  };
  return failed || transport === 'stdio' ? undefined : (spec as ServerSpec);
}

/** The entry's `flotilla` settings that are set. */
function flotillaSettings(entry: McpServerEntry): Record<string, unknown> {
  const f = entry.flotilla ?? {};
  return Object.fromEntries(Object.entries(f).filter(([k, v]) => v !== undefined && k !== 'bearerTokenEnv'));
}

function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => source[k] !== undefined).map((k) => [k, source[k]]));
}
