import type { Registry } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import type { Catalog } from '../../catalog/Catalog.js';
import type { MeshDiscovery } from '../../discovery/MeshDiscovery.js';
import type { BreakerState } from '../../endpoint/NodeGuard.js';
import type { NodeLoadView } from '../../discovery/NodeLoadView.js';
import type { CallRateWindow, WindowRates } from '../calls/CallRateWindow.js';
import type { RecentFailures } from '../calls/RecentFailures.js';
import type { ReadinessCheck } from '../ReadinessCheck.js';
import { DASHBOARD_SNAPSHOT_VERSION, type DashboardNode, type DashboardSnapshot, type DashboardTool } from './DashboardSnapshot.js';
import { DEFAULT_NODE_STATUS_THRESHOLDS, describeNode, type NodeStatusThresholds } from './describeNode.js';
import { LivePingData, type NodeHeartbeat } from './LivePingData.js';
import { NodeRoster } from './NodeRoster.js';

const BREAKER_SEVERITY: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
const worseBreaker = (a: BreakerState, b: BreakerState): BreakerState => (BREAKER_SEVERITY[b] > BREAKER_SEVERITY[a] ? b : a);

/** How often departures are looked for when nobody watches, ms: a node that leaves is seen leaving within this. */
const ROSTER_SAMPLE_MS = 1000;

/** What the dashboard reads. */
export interface DashboardModelDeps {
  discovery: MeshDiscovery;
  /** Read for the nodes' latest heartbeats (see {@link LivePingData}). */
  registry: Pick<Registry, 'list'>;
  logger: Logger;
  catalog: Catalog;
  loadView: NodeLoadView;
  readiness: ReadinessCheck;
  rates: CallRateWindow;
  failures: RecentFailures;
  strategy: string;
  /** Epoch ms the router started. */
  startedAt: number;
  thresholds?: NodeStatusThresholds;
  now?: () => number;
}

/**
 * Builds the dashboard's {@link DashboardSnapshot} from the router's live state: readiness, nodes (with
 * status, ping data, load, breaker, and recently departed ones), tools with replicas and windowed rates,
 * and recent failed calls. Reads only public state of the other parts; builds in O(nodes + tools).
 */
export class DashboardModel {
  private readonly roster: NodeRoster;
  private readonly pings: LivePingData;
  private readonly thresholds: NodeStatusThresholds;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: DashboardModelDeps) {
    this.thresholds = deps.thresholds ?? DEFAULT_NODE_STATUS_THRESHOLDS;
    this.now = deps.now ?? Date.now;
    this.roster = new NodeRoster(this.thresholds.heartbeatLateMs);
    this.pings = new LivePingData(deps.registry, deps.logger, this.now);
  }

  /** Starts looking for departed nodes every second, so they are noticed even while no page is open. */
  start(): void {
    this.timer ??= setInterval(() => this.nodes(this.now(), undefined), ROSTER_SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The dashboard's data now (reads the nodes' latest heartbeats from the registry first, briefly). */
  async snapshot(): Promise<DashboardSnapshot> {
    const heartbeats = await this.pings.heartbeats();
    const now = this.now();
    const nodes = this.nodes(now, heartbeats);
    const { windowS, total, perTool } = this.deps.rates.rates();
    const tools = this.tools(perTool);
    const count = (...statuses: DashboardNode['status'][]): number => nodes.filter((n) => statuses.includes(n.status)).length;
    return {
      v: DASHBOARD_SNAPSHOT_VERSION,
      generatedAt: now,
      router: {
        strategy: this.deps.strategy,
        uptimeS: Math.max(0, now - this.deps.startedAt) / 1000,
        readiness: this.deps.readiness.evaluate(),
      },
      summary: {
        nodes: {
          // A node that left in an orderly way is no longer part of the fleet; one that vanished still is.
          total: nodes.length - count('left'),
          healthy: count('healthy'),
          degraded: count('degraded'),
          unhealthy: count('unhealthy'),
          draining: count('draining'),
          gone: count('gone'),
        },
        tools: this.deps.catalog.listTools().length,
        windowS,
        calls: total.calls,
        callRate: total.callRate,
        errors: total.errors,
        errorRate: total.errorRate,
        toolErrors: total.toolErrors,
      },
      nodes,
      tools,
      failures: this.deps.failures.list(),
    };
  }

  private nodes(now: number, heartbeats: ReadonlyMap<string, NodeHeartbeat> | undefined): DashboardNode[] {
    const live = this.deps.discovery.listEndpoints().map((e) => {
      const load = this.deps.loadView.snapshot(e.nodeId);
      const heartbeat = heartbeats?.get(e.nodeId);
      return describeNode(
        {
          registered: e.registered,
          // A reading of another instance of the node id (a restart) says nothing about this one.
          heartbeat: heartbeat?.instanceId === e.record.instanceId ? heartbeat : undefined,
          draining: e.draining,
          connected: e.connected,
          breaker: e.breakerState,
          servers: e.serverStatus(),
          outstanding: e.outstanding,
          running: e.running,
          queued: e.queued,
          load: load?.load,
          loadReceivedAt: load?.loadReceivedAt,
        },
        now,
        this.thresholds,
      );
    });
    return this.roster.observe(live, now);
  }

  private tools(perTool: ReadonlyMap<string, WindowRates>): DashboardTool[] {
    const none: WindowRates = { calls: 0, errors: 0, toolErrors: 0, totalSeconds: 0, callRate: 0, errorRate: null, meanMs: null };
    const rows = this.deps.catalog.listTools().map((t): DashboardTool => {
      const r = perTool.get(t.name) ?? none;
      return {
        name: t.name,
        server: t.server,
        retryable: t.retryableAfterAcceptance,
        replicas: t.replicas.map((nodeId) => {
          const e = this.deps.discovery.endpoint(nodeId);
          // The tool's own breaker on that node counts as much as the node's (the key routing uses).
          const toolKey = `${t.server}/${t.upstreamName}`;
          const breaker = e ? worseBreaker(e.breakerState, e.toolBreakerState(toolKey)) : 'closed';
          return { nodeId, available: e?.canServe(t.server, toolKey) ?? false, breaker };
        }),
        calls: r.calls,
        callRate: r.callRate,
        errors: r.errors,
        errorRate: r.errorRate,
        toolErrors: r.toolErrors,
        meanMs: r.meanMs,
      };
    });
    // Tools called within the window that the catalog does not have (now): `(unknown)`, or a tool whose
    // last replica left. They matter most when they fail, so they stay visible.
    const listed = new Set(rows.map((r) => r.name));
    for (const [name, r] of perTool) {
      if (listed.has(name)) continue;
      rows.push({ name, server: '', retryable: false, replicas: [], calls: r.calls, callRate: r.callRate, errors: r.errors, errorRate: r.errorRate, toolErrors: r.toolErrors, meanMs: r.meanMs });
    }
    return rows;
  }
}
