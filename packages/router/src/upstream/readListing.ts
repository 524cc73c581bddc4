import {
  ErrorCode,
  ListPromptsResultSchema,
  ListResourceTemplatesResultSchema,
  ListResourcesResultSchema,
  ListToolsResultSchema,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { emptyListing, type ServerListing } from '../catalog/ServerListing.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import type { UpstreamSession } from './UpstreamSession.js';

/** Longest one list page may take, ms. */
export const LIST_TIMEOUT_MS = 15_000;
/** Most pages followed per list (a server whose cursor never ends cannot keep the router fetching). */
const MAX_LIST_PAGES = 200;

type PagedSchema = z.ZodType<{ nextCursor?: string | undefined }>;

/** Every page of one list, checked against the SDK's result schema. */
async function allPages<T>(session: UpstreamSession, method: string, schema: PagedSchema, items: (page: never) => T[], signal?: AbortSignal): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const raw = await session.request(method, cursor ? { cursor } : undefined, { signal: signal ?? AbortSignal.timeout(LIST_TIMEOUT_MS * 2), timeoutMs: LIST_TIMEOUT_MS });
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new JsonRpcError(ErrorCode.InternalError, `node ${session.nodeId} answered ${method} of ${session.server} with an invalid result`);
    out.push(...items(parsed.data as never));
    const next = parsed.data.nextCursor;
    if (!next || next === cursor) break;
    cursor = next;
  }
  return out;
}

/** The tools of a server, as this session sees them, less those beyond the router's bounds (`ToolSchemaGuard`). */
export async function readTools(session: UpstreamSession, signal?: AbortSignal): Promise<Tool[]> {
  const tools = await allPages(session, 'tools/list', ListToolsResultSchema, (p: z.infer<typeof ListToolsResultSchema>) => p.tools, signal);
  return session.toolSchemas ? session.toolSchemas.admit(tools, session.origin) : tools;
}

export function readResources(session: UpstreamSession, signal?: AbortSignal): Promise<Resource[]> {
  return allPages(session, 'resources/list', ListResourcesResultSchema, (p: z.infer<typeof ListResourcesResultSchema>) => p.resources, signal);
}

export function readResourceTemplates(session: UpstreamSession, signal?: AbortSignal): Promise<ResourceTemplate[]> {
  return allPages(session, 'resources/templates/list', ListResourceTemplatesResultSchema, (p: z.infer<typeof ListResourceTemplatesResultSchema>) => p.resourceTemplates, signal);
}

export function readPrompts(session: UpstreamSession, signal?: AbortSignal): Promise<Prompt[]> {
  return allPages(session, 'prompts/list', ListPromptsResultSchema, (p: z.infer<typeof ListPromptsResultSchema>) => p.prompts, signal);
}

/**
 * Everything a server offers this session: every page of tools, resources, resource templates and
 * prompts (each only when the server declared the capability), and its instructions.
 */
export async function readListing(session: UpstreamSession): Promise<ServerListing> {
  await session.open();
  const caps = session.serverCapabilities;
  const listing = emptyListing();
  const [tools, resources, templates, prompts] = await Promise.all([
    caps.tools ? readTools(session) : [],
    caps.resources ? readResources(session) : [],
    caps.resources ? readResourceTemplates(session).catch(methodNotFoundAsEmpty) : [],
    caps.prompts ? readPrompts(session) : [],
  ]);
  listing.tools = tools;
  listing.resources = resources;
  listing.resourceTemplates = templates;
  listing.prompts = prompts;
  if (session.instructions !== undefined) listing.instructions = session.instructions;
  return listing;
}

/** Servers with resources but no templates may answer templates/list with "method not found". */
function methodNotFoundAsEmpty(err: unknown): ResourceTemplate[] {
  if (err instanceof JsonRpcError && err.code === ErrorCode.MethodNotFound) return [];
  throw err;
}
