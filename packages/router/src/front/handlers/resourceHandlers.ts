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
  const { catalog, forwarder } = session.services;

  session.methods.on('resources/list', ListResourcesRequestSchema.shape.params, async (params) => {
    const page = listPage((await session.view.resources()).map((r) => r.definition), params?.cursor);
    return { resources: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  session.methods.on('resources/templates/list', ListResourceTemplatesRequestSchema.shape.params, async (params) => {
    const page = listPage((await session.view.resourceTemplates()).map((t) => t.definition), params?.cursor);
    return { resourceTemplates: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  session.methods.on('resources/read', ReadResourceRequestSchema.shape.params, async (params, request) => {
    const uri = params.uri;
    const route = await routeResource(session, uri);
    // A resource every session sees reads the same anywhere; any other may be this session's own.
    const global = catalog.listResources().some((r) => r.uri === uri);
    const result = await forwarder.forward({
      target: uri,
      server: route.server,
      replicas: route.replicas,
      request: { method: 'resources/read', params },
      retryAfterAcceptance: true,
      client: session.callContext(request),
      placement: global ? session.placementFor(route.server) : session.statePlacementFor(route.server),
    });
    return checkedResult(ReadResourceResultSchema, result, route.server);
  });

  session.methods.on('resources/subscribe', SubscribeRequestSchema.shape.params, (params, request) => session.subscriptions.subscribe(params.uri, session.callContext(request)));

  session.methods.on('resources/unsubscribe', UnsubscribeRequestSchema.shape.params, (params, request) => session.subscriptions.unsubscribe(params.uri, session.callContext(request)));
}
