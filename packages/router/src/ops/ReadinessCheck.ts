import type { Catalog } from '../catalog/Catalog.js';
import type { MeshDiscovery } from '../discovery/MeshDiscovery.js';
import type { Readiness } from './dashboard/DashboardSnapshot.js';

/** What readiness is judged from. */
export interface ReadinessSources {
  discovery: MeshDiscovery;
  catalog: Catalog;
  /** Registry backend name (`nats-kv`, `consul`), for the messages. */
  registryKind: string;
  natsConnected(): boolean;
  clientSessions(): number;
}

/**
 * Whether this router can take calls, with the reasons when not (`/readyz`, the dashboard header).
 *
 * Not ready: the registry gave no first snapshot or is unreachable, or no node has a working upstream
 * session. A lost NATS connection alone is a warning, not a reason: calls still flow over HTTP to the
 * nodes the router knows, only the load reports stop (with the NATS KV registry the registry is
 * unreachable too, which is a reason on its own). Taking every router out of service for a NATS blip
 * would turn a degraded mesh into a full outage.
 */
export class ReadinessCheck {
  constructor(private readonly sources: ReadinessSources) {}

  evaluate(): Readiness {
    const { discovery, catalog, registryKind } = this.sources;
    const registry = discovery.registryStatus();
    const endpoints = discovery.listEndpoints();
    const connected = endpoints.filter((e) => e.connected).length;
    const natsConnected = this.sources.natsConnected();
    const tools = catalog.listTools().length;
    const reasons: string[] = [];
    const warnings: string[] = [];

    if (!registry.synced) reasons.push(`registry (${registryKind}): no snapshot received yet`);
    else if (!registry.reachable) reasons.push(`registry (${registryKind}) unreachable${registry.error ? `: ${registry.error}` : ''}; routing on the last view`);
    if (endpoints.length === 0) reasons.push('no nodes registered');
    else if (connected === 0) reasons.push(`none of the ${endpoints.length} registered nodes has a working upstream session yet`);

    if (!natsConnected) warnings.push('NATS disconnected: no load or progress reports arrive');
    if (connected > 0 && connected < endpoints.length) warnings.push(`${endpoints.length - connected} of ${endpoints.length} nodes have no working upstream session`);
    if (connected > 0 && tools === 0) warnings.push('the catalog has no tools');

    return {
      ready: reasons.length === 0,
      reasons,
      warnings,
      registry: { kind: registryKind, synced: registry.synced, reachable: registry.reachable, ...(registry.error ? { error: registry.error } : {}) },
      nats: { connected: natsConnected },
      nodes: endpoints.length,
      connectedNodes: connected,
      tools,
      sessions: this.sources.clientSessions(),
    };
  }
}
