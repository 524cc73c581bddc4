import type { Prompt, Resource, ResourceTemplate, Tool } from '@modelcontextprotocol/sdk/types.js';

/** Everything one hosted server offers one session, as fetched from one replica (all pages). */
export interface ServerListing {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
  /** The server's `instructions` from its initialize answer. */
  instructions?: string;
}

/** A listing with nothing in it, for servers that lack a capability. */
export function emptyListing(): ServerListing {
  return { tools: [], resources: [], resourceTemplates: [], prompts: [] };
}
