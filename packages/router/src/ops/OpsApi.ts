import type { ServerResponse } from 'node:http';
import type { Catalog } from '../catalog/Catalog.js';
import type { MeshDiscovery } from '../discovery/MeshDiscovery.js';
import type { NodeLoadView } from '../discovery/NodeLoadView.js';
import { sendJson } from '../front/JsonRpcHttpError.js';
import type { ReadinessCheck } from './ReadinessCheck.js';
import type { ReplicaSummary } from '../sessions/ReplicaSessionCounts.js';

/**
 * The operations endpoints: `/healthz` (the process serves), `/readyz` (see {@link ReadinessCheck}; 503
 * with the reasons when not ready), `/api/v1/nodes` and `/api/v1/tools` (what the router sees). The
 * dashboard has its own endpoints (`DashboardEndpoints`). Neither says where a node is (its MCP URL):
 * anyone who passes the Host check may read them, while agents' internal addresses are for holders of
 * registry credentials (`flotilla nodes`).
 */
export class OpsApi {
  constructor(
    private readonly discovery: MeshDiscovery,
    private readonly catalog: Catalog,
    private readonly loadView: NodeLoadView,
    private readonly readiness: ReadinessCheck,
    private readonly strategy: string,
    /** The other live router replicas and their session counts. */
    private readonly replicas: () => readonly ReplicaSummary[] = () => [],
  ) {}

  /** The other live router replicas (heard over NATS within the last few seconds) and the sessions each holds. */
  replicaList(res: ServerResponse): void {
    sendJson(res, 200, { replicas: this.replicas() });
  }

  /** Liveness: the process serves HTTP. Nothing else is checked, so a broken dependency never restarts it. */
  healthz(res: ServerResponse): void {
    sendJson(res, 200, { status: 'ok' });
  }

  readyz(res: ServerResponse): void {
    const r = this.readiness.evaluate();
    sendJson(res, r.ready ? 200 : 503, r);
  }

  nodes(res: ServerResponse): void {
    const nodes = this.discovery.listEndpoints().map((e) => {
      const load = this.loadView.snapshot(e.nodeId);
      const { record } = e;
      return {
        nodeId: record.nodeId,
        instanceId: record.instanceId,
        version: record.version,
        zone: record.zone,
        capacity: record.capacity,
        health: e.registered.health,
        lastHeartbeatAt: e.registered.lastHeartbeatAt,
        ping: e.registered.ping,
        draining: e.draining,
        breaker: e.breakerState,
        outstanding: e.outstanding,
        queued: e.queued,
        running: e.running,
        servers: e.serverStatus(),
        load: load?.load,
        loadReceivedAt: load?.loadReceivedAt,
        progress: load?.progress ?? [],
      };
    });
    sendJson(res, 200, { strategy: this.strategy, nodes });
  }

  tools(res: ServerResponse): void {
    const tools = this.catalog.listTools().map((t) => ({
      name: t.name,
      server: t.server,
      upstreamName: t.upstreamName,
      description: t.definition.description,
      annotations: t.definition.annotations,
      retryableAfterAcceptance: t.retryableAfterAcceptance,
      replicas: t.replicas.map((nodeId) => {
        const e = this.discovery.endpoint(nodeId);
        return { nodeId, available: e?.canServe(t.server) ?? false, outstanding: e?.outstanding ?? 0, breaker: e?.breakerState ?? 'closed' };
      }),
    }));
    sendJson(res, 200, { tools });
  }
}
