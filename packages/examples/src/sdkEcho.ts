/**
 * Example server `sdkEcho` (an SDK `McpServer` factory): `echo` returns its text, `repeat` times over if
 * asked. The benchmark suite runs this same server bare and hosted by an agent, so the agent's own cost is
 * measured against the very server it hosts (the fastmcp `echo` example also pays fastmcp's own 1 ms pause after every tool call).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** A new server for one MCP session (an SDK server serves one transport). */
export default function createSdkEcho(): McpServer {
  const server = new McpServer({ name: 'sdk-echo', version: '0.1.0' });
  server.registerTool(
    'echo',
    {
      description: 'Returns the given text unchanged (`repeat` times over: a large result from a small request).',
      inputSchema: { text: z.string(), repeat: z.number().int().min(1).max(1_000_000).optional() },
      annotations: { readOnlyHint: true },
    },
    ({ text, repeat }) => ({ content: [{ type: 'text', text: repeat === undefined ? text : text.repeat(repeat) }] }),
  );
  return server;
}
