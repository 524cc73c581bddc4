import {
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ReadResourceRequestSchema,
  ReadResourceResultSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { SessionContext } from '../SessionContext.js';
import { listPage } from '../ListPage.js';
import { routeResource } from '../routeResource.js';
import { checkedResult } from './checkedResult.js';

/**
 * Resources as this client sees them: lists from its view, reads routed to the server that has the URI
 * (and, for session-scoped resources, to the node holding the client's session state), subscriptions
 * held on the client's own upstream sessions.
 */
export function installResourceHandlers(session: SessionContext): void {
  const { server } = session;
  const { catalog, forwarder } = session.services;

  server.setRequestHandler(ListResourcesRequestSchema, async (request) => {
    const page = listPage((await session.view.resources()).map((r) => r.definition), request.params?.cursor);
    return { resources: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  server.setRequestHandler(ListResourceTemplatesRequestSchema, async (request) => {
    const page = listPage((await session.view.resourceTemplates()).map((t) => t.definition), request.params?.cursor);
    return { resourceTemplates: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const uri = request.params.uri;
    const route = await routeResource(session, uri);
    // A resource every session sees reads the same anywhere; any other may be this session's own.
    const global = catalog.listResources().some((r) => r.uri === uri);
    const result = await forwarder.forward({
      target: uri,
      server: route.server,
      replicas: route.replicas,
      request: { method: 'resources/read', params: request.params },
      retryAfterAcceptance: true,
      client: session.callContext(extra),
      placement: global ? session.placementFor(route.server) : session.statePlacementFor(route.server),
    });
    return checkedResult(ReadResourceResultSchema, result, route.server);
  });

  server.setRequestHandler(SubscribeRequestSchema, (request, extra) => session.subscriptions.subscribe(request.params.uri, session.callContext(extra)));

  server.setRequestHandler(UnsubscribeRequestSchema, (request, extra) => session.subscriptions.unsubscribe(request.params.uri, session.callContext(extra)));
}
