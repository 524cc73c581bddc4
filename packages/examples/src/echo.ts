/**
 * Example server `echo` (fastmcp `FastMCP` instance): `echo` returns its text, `add` adds two numbers.
 * Both are read-only, so the router may retry them on another node.
 */
import { FastMCP } from 'fastmcp';
import { z } from 'zod';
import { stderrLogger } from './stderrLogger.js';

const server = new FastMCP({ name: 'echo', version: '0.1.0', logger: stderrLogger('echo') });

server.addTool({
  name: 'echo',
  description: 'Returns the given text unchanged.',
  parameters: z.object({ text: z.string().describe('Text to echo back') }),
  annotations: { title: 'Echo', readOnlyHint: true, openWorldHint: false },
  execute: async ({ text }) => text,
});

server.addTool({
  name: 'add',
  description: 'Adds two numbers and returns the sum as text.',
  parameters: z.object({ a: z.number(), b: z.number() }),
  annotations: { title: 'Add', readOnlyHint: true, openWorldHint: false },
  execute: async ({ a, b }) => String(a + b),
});

export default server;
