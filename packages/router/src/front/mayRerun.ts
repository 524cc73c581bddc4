import type { Catalog } from '../catalog/Catalog.js';

/** Requests that change nothing, or nothing more when repeated: they may run again. */
const SAFE_TO_REPEAT: ReadonlySet<string> = new Set([
  'ping',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/result',
  'tasks/list',
]);

/**
 * Whether a client request may run again on another router replica when the one running it dies before
 * answering (the client resumes its stream there): requests that only read or are idempotent, and tool
 * calls of tools annotated `readOnlyHint` or `idempotentHint`, by the same rule as failover between nodes.
 */
export function mayRerun(catalog: Catalog, method: string, params: Record<string, unknown> | undefined): boolean {
  if (method === 'tools/call') {
    const name = params?.['name'];
    return typeof name === 'string' && catalog.tool(name)?.retryableAfterAcceptance === true;
  }
  return SAFE_TO_REPEAT.has(method);
}
