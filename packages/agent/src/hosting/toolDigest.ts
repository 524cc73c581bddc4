import { createHash } from 'node:crypto';
import { canonicalJson } from '@flotilla/protocol';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

// One canonical form for digests and signatures alike (re-exported: the agent's public API names it).
export { canonicalJson };

/**
 * Digest of a tool list: SHA-256 of the canonical JSON of the tools sorted by name, each reduced to what
 * makes replicas interchangeable (name, description, input and output schema, annotations). Equal
 * digests on two nodes mean the router may treat them as replicas of one server.
 */
export function toolDigest(tools: readonly Tool[]): string {
  const reduced = [...tools]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema,
      outputSchema: t.outputSchema,
      annotations: t.annotations,
    }));
  return `sha256:${createHash('sha256').update(canonicalJson(reduced)).digest('hex')}`;
}
