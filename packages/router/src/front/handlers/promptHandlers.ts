import { GetPromptRequestSchema, GetPromptResultSchema, ListPromptsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { unknownPrompt } from '../../errors/routingErrors.js';
import type { SessionContext } from '../SessionContext.js';
import { listPage } from '../ListPage.js';
import { checkedResult } from './checkedResult.js';

/** Prompts as this client sees them, namespaced like tools; `prompts/get` forwarded like a call. */
export function installPromptHandlers(session: SessionContext): void {
  const { server } = session;
  const { forwarder } = session.services;

  server.setRequestHandler(ListPromptsRequestSchema, async (request) => {
    const page = listPage((await session.view.prompts()).map((p) => p.definition), request.params?.cursor);
    return { prompts: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const name = request.params.name;
    const prompt = await session.view.prompt(name);
    if (!prompt) throw unknownPrompt(name);
    const result = await forwarder.forward({
      target: prompt.name,
      server: prompt.server,
      replicas: prompt.replicas,
      request: { method: 'prompts/get', params: { ...request.params, name: prompt.upstreamName } },
      retryAfterAcceptance: true,
      client: session.callContext(extra),
      placement: session.placementFor(prompt.server),
    });
    return checkedResult(GetPromptResultSchema, result, prompt.server);
  });
}
