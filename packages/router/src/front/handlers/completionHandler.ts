import { CompleteRequestSchema, CompleteResultSchema, ErrorCode, type CompleteResult } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../../errors/JsonRpcError.js';
import { unknownPrompt } from '../../errors/routingErrors.js';
import type { SessionContext } from '../SessionContext.js';
import { routeResource } from '../routeResource.js';
import { checkedResult } from './checkedResult.js';

/** `completion/complete` for a prompt's or a resource template's arguments, forwarded to its server. */
export function installCompletionHandler(session: SessionContext): void {
  const { catalog, forwarder } = session.services;

  session.methods.on('completion/complete', CompleteRequestSchema.shape.params, async (params, request): Promise<CompleteResult> => {
    const ref = params.ref;
    let route: { target: string; server: string; replicas: readonly string[]; ref: typeof ref };
    if (ref.type === 'ref/prompt') {
      const prompt = await session.view.prompt(ref.name);
      if (!prompt) throw unknownPrompt(ref.name);
      route = { target: prompt.name, server: prompt.server, replicas: prompt.replicas, ref: { ...ref, name: prompt.upstreamName } };
    } else {
      const template = catalog.resourceTemplate(ref.uri);
      const target = template ?? (await routeResource(session, ref.uri));
      route = { target: ref.uri, server: target.server, replicas: target.replicas, ref };
    }
    try {
      const result = await forwarder.forward({
        target: route.target,
        server: route.server,
        replicas: route.replicas,
        request: { method: 'completion/complete', params: { ...params, ref: route.ref } },
        retryAfterAcceptance: true,
        client: session.callContext(request),
        placement: session.placementFor(route.server),
      });
      return checkedResult(CompleteResultSchema, result, route.server);
    } catch (err) {
      // A server without completion support has nothing to suggest; that is not an error for the client.
      if (err instanceof JsonRpcError && err.code === ErrorCode.MethodNotFound) return { completion: { values: [], hasMore: false } };
      throw err;
    }
  });
}
