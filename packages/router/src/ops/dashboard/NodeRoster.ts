import type { DashboardNode } from './DashboardSnapshot.js';

/** How long a node that left stays on the dashboard, ms. */
export const DEPARTED_RETENTION_MS = 10 * 60_000;
/** At most this many departed nodes are remembered (a churning fleet must not grow the page without bound). */
export const MAX_DEPARTED = 50;

interface Departed {
  row: DashboardNode;
  /** Epoch ms of its last heartbeat, when known. */
  lastHeartbeatAt: number | undefined;
}

/**
 * Remembers nodes that left the registry view for a while, so an operator sees "node-2 gone 40 s ago"
 * instead of a row that silently vanished. A node whose heartbeats or load reports had stopped before it
 * left is `gone` (killed, crashed, cut off); one that was draining, or still reporting a moment before,
 * deregistered itself and is `left` (an orderly exit). A node that comes back is live again at once.
 */
export class NodeRoster {
  private lastSeen = new Map<string, { row: DashboardNode; at: number }>();
  private readonly departed = new Map<string, Departed>();

  constructor(
    private readonly heartbeatLateMs: number,
    private readonly retentionMs = DEPARTED_RETENTION_MS,
    private readonly maxDeparted = MAX_DEPARTED,
  ) {}

  /** Takes the live rows seen at `now`; returns them followed by the departed nodes still remembered, newest departure first. */
  observe(live: readonly DashboardNode[], now: number): DashboardNode[] {
    const liveIds = new Set(live.map((n) => n.nodeId));
    for (const [nodeId, seen] of this.lastSeen) {
      if (!liveIds.has(nodeId)) this.departed.set(nodeId, this.departure(seen.row, seen.at, now));
    }
    for (const nodeId of liveIds) this.departed.delete(nodeId);
    this.lastSeen = new Map(live.map((row) => [row.nodeId, { row, at: now }]));

    const remembered = [...this.departed.values()]
      .filter((d) => now - (d.row.leftAt ?? now) <= this.retentionMs)
      .sort((a, b) => (b.row.leftAt ?? 0) - (a.row.leftAt ?? 0))
      .slice(0, this.maxDeparted);
    if (remembered.length !== this.departed.size) {
      const keep = new Set(remembered.map((d) => d.row.nodeId));
      for (const nodeId of [...this.departed.keys()]) if (!keep.has(nodeId)) this.departed.delete(nodeId);
    }
    return [...live, ...remembered.map((d) => ({ ...d.row, heartbeatAgeS: d.lastHeartbeatAt === undefined ? null : Math.max(0, now - d.lastHeartbeatAt) / 1000 }))];
  }

  private departure(last: DashboardNode, seenAt: number, now: number): Departed {
    const lastHeartbeatAt = last.heartbeatAgeS === null ? undefined : seenAt - last.heartbeatAgeS * 1000;
    const late =
      (lastHeartbeatAt !== undefined && seenAt - lastHeartbeatAt > this.heartbeatLateMs) || (last.load !== null && last.load.ageS * 1000 > this.heartbeatLateMs);
    // Without any recent signal there is no telling a deregistration from a silent death: say it left.
    const reporting = (lastHeartbeatAt !== undefined || last.load !== null) && !late;
    const orderly = !late && (last.draining || reporting);
    const reason = orderly
      ? last.draining
        ? 'deregistered after draining'
        : 'deregistered (stopped or drained)'
      : late
        ? `heartbeats stopped${lastHeartbeatAt === undefined ? '' : `: the last one ${((now - lastHeartbeatAt) / 1000).toFixed(1)} s before it left`}`
        : 'left the registry view';
    return {
      lastHeartbeatAt,
      row: {
        ...last,
        status: orderly ? 'left' : 'gone',
        reasons: [reason],
        connected: false,
        servers: last.servers.map((s) => ({ ...s, connected: false })),
        load: null,
        router: { outstanding: 0, running: 0, queued: 0 },
        leftAt: now,
      },
    };
  }
}
