import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FastMCP } from 'fastmcp';
import type { ModuleServerSpec as ServerSpec } from '../mounts/MountSpecs.js';
import { FastMcpHost } from './FastMcpHost.js';
import { SdkFactoryHost, type SdkServerLike } from './SdkFactoryHost.js';
import type { ServerHost } from './ServerHost.js';

/** Thrown when a server module cannot be loaded or exports nothing the agent can host. */
export class ServerModuleError extends Error {
  constructor(spec: ServerSpec, detail: string, options?: { cause?: unknown }) {
    super(`server "${spec.name}" (module ${spec.module}): ${detail}`, options);
    this.name = 'ServerModuleError';
  }
}

type Candidate = Record<string, unknown>;

function isObject(value: unknown): value is Candidate {
  return typeof value === 'object' && value !== null;
}

/** A FastMCP instance, also one from another copy of the fastmcp package (so not `instanceof`). */
function isFastMcp(value: unknown): value is FastMCP {
  if (value instanceof FastMCP) return true;
  return isObject(value) && typeof value.addTool === 'function' && typeof value.connect === 'function' && typeof value.start === 'function' && 'sessions' in value;
}

/** An SDK `McpServer` (has `.server`) or low-level `Server` (has `setRequestHandler`). */
function isSdkServer(value: unknown): value is SdkServerLike {
  if (!isObject(value) || typeof value.connect !== 'function' || typeof value.close !== 'function') return false;
  const inner = value.server;
  return typeof value.setRequestHandler === 'function' || (isObject(inner) && typeof inner.setRequestHandler === 'function');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return 'a function';
  if (isObject(value)) return `an object (${value.constructor?.name ?? 'Object'})`;
  return typeof value;
}

/** True for a specifier that names a file rather than a package. */
function looksLikePath(specifier: string): boolean {
  return specifier.startsWith('.') || isAbsolute(specifier) || /\.(m?[jt]s|cjs)$/.test(specifier);
}

/**
 * Imports the module: a file relative to `cwd`, or a package resolved from `cwd` first (the operator's
 * project), then from the agent itself (which ships `@flotilla/examples`).
 */
async function importModule(spec: ServerSpec, cwd: string): Promise<Candidate> {
  if (looksLikePath(spec.module)) {
    const file = resolve(cwd, spec.module);
    if (!existsSync(file)) throw new ServerModuleError(spec, `file ${file} does not exist`);
    return (await import(pathToFileURL(file).href)) as Candidate;
  }
  let fromCwd: string | undefined;
  try {
    fromCwd = createRequire(join(cwd, 'package.json')).resolve(spec.module);
  } catch {
    // Not installed in the working directory's project: try the agent's own dependencies below.
  }
  if (fromCwd) return (await import(pathToFileURL(fromCwd).href)) as Candidate;
  return (await import(spec.module)) as Candidate;
}

/**
 * What the agent passes a server factory, so a server can tell where it runs (e.g. in a `whoami` tool).
 * Factories that take no argument simply ignore it.
 */
export interface ServerFactoryContext {
  /** Id of the node (agent) hosting the server. */
  nodeId: string;
  /** Name the server is hosted under (its tool namespace and URL path). */
  server: string;
}

/**
 * Loads a server module and wraps its export in a {@link ServerHost}. Accepts a fastmcp `FastMCP`
 * instance, or a (sync or async) factory returning an SDK `McpServer`/`Server` or a `FastMCP`; a factory
 * is called with a {@link ServerFactoryContext}. An SDK server instance is refused: it can serve only one
 * session.
 */
export async function loadServerModule(spec: ServerSpec, context: ServerFactoryContext, cwd: string = process.cwd()): Promise<ServerHost> {
  let mod: Candidate;
  try {
    mod = await importModule(spec, cwd);
  } catch (err) {
    if (err instanceof ServerModuleError) throw err;
    throw new ServerModuleError(spec, `cannot import: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const exportName = spec.exportName ?? ('default' in mod && mod.default !== undefined ? 'default' : 'server');
  const value = mod[exportName];
  if (value === undefined) {
    const names = Object.keys(mod).join(', ') || 'none';
    throw new ServerModuleError(spec, `has no export "${exportName}" (exports: ${names}); export a FastMCP instance or an McpServer factory as default or "server", or name one with exportName`);
  }
  if (isFastMcp(value)) return new FastMcpHost(value);
  if (isSdkServer(value)) {
    throw new ServerModuleError(spec, `export "${exportName}" is an SDK server instance, which can serve only one MCP session; export a factory instead, e.g. \`export default () => createServer()\``);
  }
  if (typeof value !== 'function') {
    throw new ServerModuleError(spec, `export "${exportName}" is ${describe(value)}; expected a FastMCP instance or a function returning an McpServer`);
  }
  const factory = value as (context: ServerFactoryContext) => unknown;
  const first = await Promise.resolve()
    .then(() => factory({ ...context }))
    .catch((err: unknown) => {
      throw new ServerModuleError(spec, `factory "${exportName}" threw: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
  if (isFastMcp(first)) return new FastMcpHost(first);
  if (!isSdkServer(first)) {
    throw new ServerModuleError(spec, `factory "${exportName}" returned ${describe(first)}; expected an McpServer, a Server or a FastMCP instance`);
  }
  // The instance built to validate the factory serves the first session, so a factory is never wasted.
  let spare: SdkServerLike | undefined = first;
  return new SdkFactoryHost(async () => {
    if (spare) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const built = await factory({ ...context });
    if (!isSdkServer(built)) throw new Error(`factory of server "${spec.name}" returned ${describe(built)} instead of an MCP server`);
    return built;
  });
}
