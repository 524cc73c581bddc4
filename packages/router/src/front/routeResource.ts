import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import type { ServerRoute } from '../catalog/CatalogEntries.js';
import { unknownResource } from '../errors/routingErrors.js';
import type { SessionContext } from './SessionContext.js';

/**
 * The server (and its replicas) that has `uri` for this client: one the mesh catalog lists or templates,
 * else one the client's own view lists (a resource its session created) or templates. Throws "unknown
 * resource" when no server has it.
 */
export async function routeResource(session: SessionContext, uri: string): Promise<ServerRoute> {
  const known = session.services.catalog.routeResource(uri);
  if (known) return known;
  const view = session.view;
  const listed = (await view.resources()).find((r) => r.definition.uri === uri);
  if (listed) return { server: listed.server, replicas: view.replicasOf(listed.server) };
  for (const t of await view.resourceTemplates()) {
    if (templateMatches(t.definition.uriTemplate, uri)) return { server: t.server, replicas: view.replicasOf(t.server) };
  }
  throw unknownResource(uri);
}

function templateMatches(template: string, uri: string): boolean {
  try {
    return new UriTemplate(template).match(uri) !== null;
  } catch {
    return false;
  }
}
