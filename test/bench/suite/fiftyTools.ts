/** A server module for the catalog-scale benchmark: an SDK server factory with 50 small tools. */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** Tools per server. */
export const TOOLS_PER_SERVER = 50;

export default function fiftyTools(): McpServer {
  const server = new McpServer({ name: 'wide', version: '0' });
  for (let i = 0; i < TOOLS_PER_SERVER; i++) {
    server.registerTool(
      `t${String(i).padStart(2, '0')}`,
      { description: `Tool number ${i}: returns its input with a suffix.`, inputSchema: { text: z.string(), times: z.number().int().optional() }, annotations: { readOnlyHint: true } },
      ({ text }) => ({ content: [{ type: 'text', text: `${text}#${i}` }] }),
    );
  }
  return server;
}
