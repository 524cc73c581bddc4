import { ServerAffinitySchema, type ServerAffinity } from '@flotilla/protocol';
import { InvalidArgumentError } from 'commander';
import { z } from 'zod';

/** commander argument parser for a TCP port (0 = any free port). */
export function parsePort(value: string): number {
  const r = z.coerce.number().int().min(0).max(65535).safeParse(value);
  if (!r.success) throw new InvalidArgumentError(`"${value}" is not a port (0-65535)`);
  return r.data;
}

/** commander argument parser for a positive integer. */
export function parsePositiveInt(value: string): number {
  const r = z.coerce.number().int().positive().safeParse(value);
  if (!r.success) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return r.data;
}

/** A commander argument parser for an integer from `min` to `max` (e.g. `--max-attempts`). */
export function intInRange(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const r = z.coerce.number().int().min(min).max(max).safeParse(value.trim() === '' ? Number.NaN : value);
    if (!r.success) throw new InvalidArgumentError(`"${value}" is not an integer from ${min} to ${max}`);
    return r.data;
  };
}

/** `--server name=module` → `{ name, module }`; `module` alone takes the name from the file name. */
export function parseServerSpec(value: string, previous: Array<{ name: string; module: string }> = []): Array<{ name: string; module: string }> {
  const eq = value.indexOf('=');
  const name = eq > 0 ? value.slice(0, eq) : (value.split('/').pop() ?? value).replace(/\.(m?js|ts)$/, '');
  const module = eq > 0 ? value.slice(eq + 1) : value;
  if (!/^[A-Za-z0-9-]{1,48}$/.test(name)) {
    throw new InvalidArgumentError(`server name "${name}" must be 1-48 letters, digits or "-" (use --server name=module)`);
  }
  if (!module) throw new InvalidArgumentError(`--server ${value}: missing module`);
  if (previous.some((s) => s.name === name)) throw new InvalidArgumentError(`server name "${name}" given twice`);
  return [...previous, { name, module }];
}

/** `--affinity name=mode` (repeatable) → `{ name: mode }`; mode is `none` or `sticky`. */
export function parseAffinity(value: string, previous: Record<string, ServerAffinity> = {}): Record<string, ServerAffinity> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--affinity ${value}: expected <server>=<${ServerAffinitySchema.options.join('|')}>`);
  const name = value.slice(0, eq);
  const mode = ServerAffinitySchema.safeParse(value.slice(eq + 1));
  if (!mode.success) throw new InvalidArgumentError(`--affinity ${value}: the mode must be one of ${ServerAffinitySchema.options.join(', ')}`);
  if (name in previous) throw new InvalidArgumentError(`--affinity: server "${name}" given twice`);
  return { ...previous, [name]: mode.data };
}

/**
 * The server specs with the `--affinity` modes applied; throws naming a server the affinities mention
 * but no `--server` hosts.
 */
export function withAffinities<S extends { name: string }>(servers: S[], affinities: Record<string, ServerAffinity>): Array<S & { affinity?: ServerAffinity }> {
  const unknown = Object.keys(affinities).filter((name) => !servers.some((s) => s.name === name));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`--affinity names ${unknown.map((n) => `"${n}"`).join(', ')}, not hosted here (hosted: ${servers.map((s) => s.name).join(', ')})`);
  }
  return servers.map((s) => (affinities[s.name] ? { ...s, affinity: affinities[s.name] } : s));
}

/** `--arg k=v` → accumulates into an object; values are parsed as JSON when they parse, else kept as strings. */
export function parseToolArg(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--arg ${value}: expected key=value`);
  const key = value.slice(0, eq);
  const raw = value.slice(eq + 1);
  let parsed: unknown = raw;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // Not JSON: a plain string argument.
  }
  return { ...previous, [key]: parsed };
}

/** Defaults shared by every command, from the environment. */
export const env = {
  natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
  prefix: process.env.FLOTILLA_PREFIX ?? 'flotilla',
  registry: process.env.FLOTILLA_REGISTRY ?? 'nats-kv',
  routerUrl: process.env.FLOTILLA_ROUTER_URL ?? 'http://127.0.0.1:8080/mcp',
};
