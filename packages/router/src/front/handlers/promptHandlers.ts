import { GetPromptRequestSchema, GetPromptResultSchema, ListPromptsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { unknownPrompt } from '../../errors/routingErrors.js';
import type { SessionContext } from '../SessionContext.js';
import { listPage } from '../ListPage.js';
import { checkedResult } from './checkedResult.js';

/** Prompts as this client sees them, namespaced like tools; `prompts/get` forwarded like a call. */
export function installPromptHandlers(session: SessionContext): void {
  const { forwarder } = session.services;

  session.methods.on('prompts/list', ListPromptsRequestSchema.shape.params, async (params) => {
    const page = listPage((await session.view.prompts()).map((p) => p.definition), params?.cursor);
    return { prompts: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  session.methods.on('prompts/get', GetPromptRequestSchema.shape.params, async (params, request) => {
    const name = params.name;
    const prompt = await session.view.prompt(name);
    if (!prompt) throw unknownPrompt(name);
    const result = await forwarder.forward({
      target: prompt.name,
      server: prompt.server,
      replicas: prompt.replicas,
      request: { method: 'prompts/get', params: { ...params, name: prompt.upstreamName } },
      retryAfterAcceptance: true,
      client: session.callContext(request),
      placement: session.placementFor(prompt.server),
    });
    return checkedResult(GetPromptResultSchema, result, prompt.server);
  });
}
