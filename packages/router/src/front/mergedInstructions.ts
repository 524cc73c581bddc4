import type { Catalog } from '../catalog/Catalog.js';

/** What the router says of itself at the top of a client's `instructions`. */
export const ROUTER_INSTRUCTIONS =
  'Flotilla router: one MCP endpoint for every server hosted in the mesh. Tools and prompts are named <server>_<name>.';

/** Longest instructions taken from one server, characters (a server cannot flood every client's context). */
const MAX_SERVER_INSTRUCTIONS = 8000;

/**
 * The `instructions` a client gets at initialize: the router's own line, then every server's
 * instructions under a heading that names its namespace, so a model knows which tools they are about.
 */
export function mergedInstructions(catalog: Catalog): string {
  const parts = [ROUTER_INSTRUCTIONS];
  for (const { name } of catalog.listServers()) {
    const text = catalog.serverListing(name)?.instructions?.trim();
    if (!text) continue;
    const body = text.length > MAX_SERVER_INSTRUCTIONS ? `${text.slice(0, MAX_SERVER_INSTRUCTIONS)}…` : text;
    parts.push(`## ${name} (tools and prompts named ${name}_*)\n${body}`);
  }
  return parts.join('\n\n');
}
