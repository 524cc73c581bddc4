import type { LoadReport } from '@flotilla/protocol';
import type { RegisteredNode } from '@flotilla/registry';
import type { BreakerState } from '../../endpoint/NodeGuard.js';
import type { DashboardNode, NodeStatus } from './DashboardSnapshot.js';
import type { NodeHeartbeat } from './LivePingData.js';

/** One live node as the router sees it now: what {@link describeNode} turns into a dashboard row. */
export interface NodeObservation {
  /** The node as the registry watch reports it (record and health; its ping data may be old). */
  registered: RegisteredNode;
  /** The node's latest heartbeat read from the registry, when a recent reading has it. */
  heartbeat: NodeHeartbeat | undefined;
  draining: boolean;
  /** At least one hosted server has a working upstream session. */
  connected: boolean;
  breaker: BreakerState;
  /** Hosted servers, with the state of each tool's own breaker on this node when not closed (upstream tool names). */
  servers: ReadonlyArray<{ name: string; connected: boolean; toolCount: number; toolBreakers?: Readonly<Record<string, BreakerState>> }>;
  outstanding: number;
  running: number;
  queued: number;
  load: LoadReport | undefined;
  /** Epoch ms when this router received `load`. */
  loadReceivedAt: number | undefined;
}

/** When a live node stops looking healthy. */
export interface NodeStatusThresholds {
  /** A heartbeat older than this when read is late (agents heartbeat every second by default), ms. */
  heartbeatLateMs: number;
  /** A load report older than this is late (agents publish every second), ms. */
  loadReportLateMs: number;
  /** Event-loop delay above this makes the node degraded, ms. */
  eventLoopLagMs: number;
}

/** Defaults for agents that heartbeat and report every second. */
export const DEFAULT_NODE_STATUS_THRESHOLDS: NodeStatusThresholds = { heartbeatLateMs: 2000, loadReportLateMs: 2500, eventLoopLagMs: 250 };

const secondsText = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * A live node's dashboard row: its status (worst finding wins: unhealthy, then draining, then degraded)
 * with the reasons in words, ping data, load and this router's own counts.
 */
export function describeNode(o: NodeObservation, now: number, thresholds: NodeStatusThresholds = DEFAULT_NODE_STATUS_THRESHOLDS): DashboardNode {
  const { record, health } = o.registered;
  const ping = o.heartbeat?.ping;
  const unhealthy: string[] = [];
  const degraded: string[] = [];

  if (health === 'critical') unhealthy.push('registry health: critical');
  if (o.breaker === 'open') unhealthy.push('circuit breaker open: recent calls failed on this node');
  if (!o.connected) unhealthy.push('no working upstream session from this router');

  if (o.connected) {
    const down = o.servers.filter((s) => !s.connected).map((s) => s.name);
    if (down.length) degraded.push(`not connected: ${down.join(', ')}`);
  }
  if (o.breaker === 'half-open') degraded.push('circuit breaker half-open: trying one call');
  const toolBreakers = (state: BreakerState): string[] =>
    o.servers.flatMap((s) => Object.entries(s.toolBreakers ?? {}).filter(([, b]) => b === state).map(([tool]) => `${s.name}/${tool}`));
  const openTools = toolBreakers('open');
  if (openTools.length) degraded.push(`tool breaker open: ${openTools.join(', ')}`);
  const trialTools = toolBreakers('half-open');
  if (trialTools.length) degraded.push(`tool breaker half-open: ${trialTools.join(', ')}`);
  if (health === 'warning') degraded.push('registry health: warning');
  if ((ping ?? o.registered.ping)?.status === 'degraded') degraded.push('node reports itself degraded');
  const heartbeatAgeMs = o.heartbeat ? Math.max(0, now - o.heartbeat.at) : undefined;
  // Judged at the time of reading: the reading itself may be up to a second old by now.
  const lateByMs = o.heartbeat ? o.heartbeat.readAt - o.heartbeat.at : 0;
  if (lateByMs > thresholds.heartbeatLateMs) degraded.push(`heartbeat late: ${secondsText(lateByMs)} old when last read`);
  const loadAgeMs = o.loadReceivedAt === undefined ? undefined : Math.max(0, now - o.loadReceivedAt);
  if (loadAgeMs === undefined) degraded.push('no load report received yet');
  else if (loadAgeMs > thresholds.loadReportLateMs) degraded.push(`no load report for ${secondsText(loadAgeMs)}`);
  const lag = o.load?.eventLoopLagMs ?? ping?.eventLoopLagMs;
  if (lag !== undefined && lag > thresholds.eventLoopLagMs) degraded.push(`event loop lag ${Math.round(lag)} ms`);

  let status: NodeStatus;
  let reasons: string[];
  if (unhealthy.length) {
    status = 'unhealthy';
    reasons = [...unhealthy, ...degraded];
  } else if (o.draining) {
    status = 'draining';
    reasons = ['draining: takes no new calls', ...degraded];
  } else if (degraded.length) {
    status = 'degraded';
    reasons = degraded;
  } else {
    status = 'healthy';
    reasons = [];
  }

  return {
    nodeId: record.nodeId,
    status,
    reasons,
    registryHealth: health,
    zone: record.zone ?? null,
    version: record.version,
    draining: o.draining,
    connected: o.connected,
    breaker: o.breaker,
    servers: o.servers.map((s) => ({ name: s.name, connected: s.connected, toolCount: s.toolCount })),
    ping: ping
      ? {
          status: ping.status,
          natsRttMs: ping.natsRttMs ?? null,
          eventLoopLagMs: ping.eventLoopLagMs,
          uptimeS: ping.uptimeS,
          inflight: ping.inflight,
          queued: ping.queued,
        }
      : null,
    load:
      o.load && loadAgeMs !== undefined
        ? { inflight: o.load.inflight, queued: o.load.queued, capacity: o.load.capacity, eventLoopLagMs: o.load.eventLoopLagMs, ageS: loadAgeMs / 1000 }
        : null,
    router: { outstanding: o.outstanding, running: o.running, queued: o.queued },
    heartbeatAgeS: heartbeatAgeMs === undefined ? null : heartbeatAgeMs / 1000,
    leftAt: null,
  };
}
