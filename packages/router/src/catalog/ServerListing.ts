import type { Prompt, Resource, ResourceTemplate, Tool } from '@modelcontextprotocol/sdk/types.js';

/** Everything one hosted server offers, as fetched from one replica (all pages). */
export interface ServerListing {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

/** A listing with nothing in it, for servers that lack a capability. */
export function emptyListing(): ServerListing {
  return { tools: [], resources: [], resourceTemplates: [], prompts: [] };
}
