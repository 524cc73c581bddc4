/**
 * Example server `failing` (fastmcp `FastMCP` instance) for error paths: `fail` returns a tool error
 * (`isError: true` with a clear message, the way tools report failures to the model), and `crash` throws
 * an unexpected exception, which fastmcp also turns into an `isError` result naming the tool.
 */
import { FastMCP, UserError } from 'fastmcp';
import { z } from 'zod';
import { stderrLogger } from './stderrLogger.js';

const server = new FastMCP({ name: 'failing', version: '0.1.0', logger: stderrLogger('failing') });

server.addTool({
  name: 'fail',
  description: 'Always fails with a user-facing error message.',
  parameters: z.object({ reason: z.string().default('this tool always fails').describe('Message to fail with') }),
  annotations: { readOnlyHint: true, openWorldHint: false },
  execute: async ({ reason }) => {
    throw new UserError(`fail: ${reason}`);
  },
});

server.addTool({
  name: 'crash',
  description: 'Throws an unexpected exception (a bug in a tool, as the server sees it).',
  parameters: z.object({}),
  annotations: { readOnlyHint: true, openWorldHint: false },
  execute: async () => {
    throw new Error('crash: unexpected failure inside the tool');
  },
});

export default server;
