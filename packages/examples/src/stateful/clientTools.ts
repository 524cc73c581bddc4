import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CreateMessageResultSchema, ElicitResultSchema, ListRootsResultSchema, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { jsonResult } from './results.js';

/** What the client-dependent tools need of their session. */
export interface ClientToolsSession {
  /** `notifications/roots/list_changed` received in this session so far. */
  rootsListChanged(): number;
}

/** A tool offered only to clients that declared a capability. */
interface CapabilityTool {
  tool: RegisteredTool;
  needs: (caps: ClientCapabilities) => boolean;
}

/**
 * Registers the tools that call back into the client: `roots_show` (roots), `ask_llm` (sampling) and
 * `ask_user` (elicitation). They start disabled; {@link offerToClient} enables, once the client has
 * initialized, those its declared capabilities allow, so a client sees exactly the tools it can use.
 */
export function registerClientTools(server: McpServer, session: ClientToolsSession): CapabilityTool[] {
  const tools: CapabilityTool[] = [
    { tool: registerRootsShow(server, session), needs: (c) => c.roots !== undefined },
    { tool: registerAskLlm(server), needs: (c) => c.sampling !== undefined },
    { tool: registerAskUser(server), needs: (c) => c.elicitation !== undefined },
  ];
  // Not connected yet, so disabling sends no list_changed.
  for (const t of tools) t.tool.disable();
  return tools;
}

/**
 * Enables the tools the client's capabilities allow. Called on `notifications/initialized`, before the
 * client can list tools; the flag is set directly, since the client has seen no list to change.
 */
export function offerToClient(tools: readonly CapabilityTool[], caps: ClientCapabilities): void {
  for (const t of tools) t.tool.enabled = t.needs(caps);
}

function registerRootsShow(server: McpServer, session: ClientToolsSession): RegisteredTool {
  return server.registerTool(
    'roots_show',
    {
      title: 'Show roots',
      description: "Asks the client for its roots (roots/list) and shows them, with how many roots list_changed notifications this session received.",
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (extra) => {
      const { roots } = await extra.sendRequest({ method: 'roots/list' }, ListRootsResultSchema);
      return jsonResult({ roots, listChangedCount: session.rootsListChanged() });
    },
  );
}

function registerAskLlm(server: McpServer): RegisteredTool {
  return server.registerTool(
    'ask_llm',
    {
      title: 'Ask the LLM',
      description: "Sends the prompt to the client's model (sampling/createMessage) and returns its answer.",
      inputSchema: { prompt: z.string().min(1).describe('Prompt for the model'), maxTokens: z.number().int().positive().max(4096).default(100) },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async ({ prompt, maxTokens }, extra) => {
      const result = await extra.sendRequest(
        { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens } },
        CreateMessageResultSchema,
      );
      const content = Array.isArray(result.content) ? result.content : [result.content];
      const text = content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
      return jsonResult({ model: result.model, text });
    },
  );
}

function registerAskUser(server: McpServer): RegisteredTool {
  return server.registerTool(
    'ask_user',
    {
      title: 'Ask the user',
      description: 'Asks the user for their name (elicitation/create, form mode) and greets them.',
      inputSchema: { message: z.string().min(1).default('What is your name?') },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async ({ message }, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: { mode: 'form', message, requestedSchema: { type: 'object', properties: { name: { type: 'string', description: 'Your name' } }, required: ['name'] } },
        },
        ElicitResultSchema,
      );
      const name = typeof result.content?.name === 'string' ? result.content.name : undefined;
      const greeting = result.action === 'accept' ? `hello, ${name ?? 'stranger'}` : `the user chose to ${result.action}`;
      return jsonResult({ action: result.action, greeting, ...(name !== undefined ? { name } : {}) });
    },
  );
}
