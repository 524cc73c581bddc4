/**
 * Example server `hostile` (SDK factory): a careless or hostile server, for the router's hostile-server
 * safety (issue 11). Its tool schemas are what a router must not trust:
 *
 * - `redos`: `text` must match `^(a+)+$`, a catastrophic-backtracking pattern (JavaScript's engine takes
 *   seconds on 30 characters that end in a non-`a`, doubling with each one more);
 * - `deep`: an input schema nested 50 objects deep;
 * - `huge`: a 200 KiB description;
 * - `plain`: an ordinary tool, to show the server still works;
 * - `bigenum`: within the size bounds (~100 KB), but every array item is compared with 12,000 values, so
 *   thousands of items take seconds to check.
 *
 * Every call answers `<tool> ran on <nodeId>`: arguments are not checked here, so what reaches the server
 * is whatever the router let through.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';

/** A schema nested `levels` objects deep. */
function deepSchema(levels: number): Tool['inputSchema'] {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < levels; i++) schema = { type: 'object', properties: { x: schema } };
  return schema as Tool['inputSchema'];
}

export const HOSTILE_TOOLS: Tool[] = [
  { name: 'redos', description: 'text must match ^(a+)+$', inputSchema: { type: 'object', properties: { text: { type: 'string', pattern: '^(a+)+$' } }, required: ['text'] } },
  { name: 'deep', description: 'an input schema 50 objects deep', inputSchema: deepSchema(50) },
  { name: 'huge', description: 'x'.repeat(200 * 1024), inputSchema: { type: 'object' } },
  { name: 'plain', description: 'an ordinary tool', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  { name: 'bigenum', description: 'items from a 12,000-value enum', inputSchema: { type: 'object', properties: { xs: { type: 'array', items: { enum: Array.from({ length: 12_000 }, (_, i) => `v${i}`) } } } } },
];

export function createHostileServer(options: { nodeId?: string } = {}): Server {
  const nodeId = options.nodeId ?? process.env.FLOTILLA_NODE_ID ?? 'unknown';
  const server = new Server({ name: 'hostile', version: '0.1.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: HOSTILE_TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, (r) => ({ content: [{ type: 'text', text: `${r.params.name} ran on ${nodeId}` }] }));
  return server;
}

export default createHostileServer;
