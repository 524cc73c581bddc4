/**
 * Example server `interactive` (SDK `McpServer` per session via the default-exported factory): tools that
 * talk back to the client during a call, to test forwarding through the router.
 *
 * - `ask_model`: asks the client's model (`sampling/createMessage`) and returns its answer.
 * - `ask_user`: asks the user for their name (`elicitation/create`) and greets them.
 * - `chatty`: sends `count` logging messages (`notifications/message`) during the call.
 *
 * Every message is sent with the call's request as related request, so it travels on the call's own
 * response stream and the agent tags it with the call id.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CreateMessageResultSchema, ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** Builds one `interactive` server (one per MCP session). */
export function createInteractiveServer(): McpServer {
  const server = new McpServer({ name: 'interactive', version: '0.1.0' }, { capabilities: { logging: {} } });

  server.registerTool(
    'ask_model',
    {
      title: 'Ask the model',
      description: "Sends a question to the client's model (sampling) and returns the answer.",
      inputSchema: { question: z.string().describe('Question for the model'), maxTokens: z.number().int().positive().max(4096).default(200) },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async ({ question, maxTokens }, extra) => {
      const result = await extra.sendRequest(
        { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: question } }], maxTokens } },
        CreateMessageResultSchema,
      );
      const content = Array.isArray(result.content) ? result.content : [result.content];
      const text = content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
      return { content: [{ type: 'text', text: `model (${result.model}) says: ${text}` }] };
    },
  );

  server.registerTool(
    'ask_user',
    {
      title: 'Ask the user',
      description: 'Asks the user for their name (elicitation) and greets them.',
      inputSchema: { message: z.string().default('What is your name?') },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async ({ message }, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            mode: 'form',
            message,
            requestedSchema: { type: 'object', properties: { name: { type: 'string', description: 'Your name' } }, required: ['name'] },
          },
        },
        ElicitResultSchema,
      );
      if (result.action !== 'accept') return { content: [{ type: 'text', text: `the user chose to ${result.action}` }] };
      const name = typeof result.content?.name === 'string' ? result.content.name : 'stranger';
      return { content: [{ type: 'text', text: `hello, ${name}` }] };
    },
  );

  server.registerTool(
    'chatty',
    {
      title: 'Chatty',
      description: 'Sends `count` logging messages to the client during the call, then returns.',
      inputSchema: { count: z.number().int().min(1).max(100).default(3) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ count }, extra) => {
      for (let i = 1; i <= count; i++) {
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'chatty', data: `message ${i} of ${count}` } });
      }
      return { content: [{ type: 'text', text: `sent ${count} log messages` }] };
    },
  );

  return server;
}

export default createInteractiveServer;
