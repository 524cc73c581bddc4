import type { Logger } from '@flotilla/telemetry';
import type { NodeLoadView } from './NodeLoadView.js';

/** What the watchdog needs of a node (`NodeEndpoint` in the router). */
export interface WatchedNode {
  readonly nodeId: string;
  /** Whether the node answers a ping in time; undefined when it has no working session to ask on. */
  checkLiveness(timeoutMs: number): Promise<boolean | undefined>;
  /** Takes the node out of rotation and fails its in-flight calls. */
  markUnresponsive(reason: string): void;
}

/** Tuning of the {@link NodeWatchdog}. */
export interface NodeWatchdogOptions {
  /** A node whose last load report is older than this is probed, ms (agents report every second). */
  suspectAfterMs: number;
  /** How long the probe's ping may take, ms. */
  probeTimeoutMs: number;
  /** Least time between two probes of one node, ms. */
  probeEveryMs: number;
  /** After this router's NATS connection comes back, nodes get this long to report again before anyone is suspected, ms. */
  reconnectGraceMs: number;
  /** How often the reports are checked, ms. */
  intervalMs: number;
}

export const DEFAULT_WATCHDOG_OPTIONS: NodeWatchdogOptions = {
  suspectAfterMs: 1500,
  probeTimeoutMs: 1000,
  probeEveryMs: 2000,
  reconnectGraceMs: 5000,
  intervalMs: 250,
};

/**
 * Fast failure detection for nodes that stop without dropping their connections (a paused process, a
 * wedged event loop): such a node keeps its TCP connections open, so nothing fails, and the registry only
 * drops it once its heartbeat is stale. Load reports come every second; when a node's stop for
 * `suspectAfterMs` while this router's own NATS link is fine, the node is pinged over HTTP, and if it
 * does not answer either, its breaker is opened and its in-flight calls are failed (retried where safe)
 * instead of hanging until the client gives up. A node that answers the ping but has stopped reporting
 * (cut off from NATS) stays in rotation, balanced on this router's own counts.
 */
export class NodeWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private readonly probing = new Set<string>();
  private readonly lastProbeAt = new Map<string, number>();
  private readonly toldAlive = new Set<string>();

  constructor(
    private readonly endpoints: () => readonly WatchedNode[],
    private readonly loadView: NodeLoadView,
    private readonly logger: Logger,
    private readonly options: NodeWatchdogOptions = DEFAULT_WATCHDOG_OPTIONS,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(Date.now()), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass over every node; resolves once the probes it started are done (tests await it). */
  check(now: number): Promise<void> {
    const nats = this.loadView.natsStatus();
    // Silence means nothing while this router cannot hear anyone, nor right after it can again.
    if (!nats.connected || (nats.reconnectedAt !== undefined && now - nats.reconnectedAt < this.options.reconnectGraceMs)) return Promise.resolve();
    const live = new Set<string>();
    const probes: Promise<void>[] = [];
    for (const endpoint of this.endpoints()) {
      const id = endpoint.nodeId;
      live.add(id);
      const latest = this.loadView.latestLoad(id);
      // A node that never reported (not on this NATS, or just joined) is judged by its connections alone.
      if (!latest) continue;
      const silentMs = now - latest.receivedAt;
      if (silentMs < this.options.suspectAfterMs) {
        this.toldAlive.delete(id);
        continue;
      }
      if (this.probing.has(id) || now - (this.lastProbeAt.get(id) ?? 0) < this.options.probeEveryMs) continue;
      probes.push(this.probe(endpoint, silentMs, now));
    }
    for (const id of this.lastProbeAt.keys()) if (!live.has(id)) this.lastProbeAt.delete(id);
    return Promise.all(probes).then(() => undefined);
  }

  private async probe(endpoint: WatchedNode, silentMs: number, now: number): Promise<void> {
    const id = endpoint.nodeId;
    this.probing.add(id);
    this.lastProbeAt.set(id, now);
    try {
      const alive = await endpoint.checkLiveness(this.options.probeTimeoutMs);
      const latest = this.loadView.latestLoad(id);
      // A report that arrived during the probe settles it.
      if (latest && latest.receivedAt > now - silentMs) return;
      if (alive === false) {
        endpoint.markUnresponsive(`stopped reporting load for ${silentMs} ms and did not answer a ping within ${this.options.probeTimeoutMs} ms`);
      } else if (alive === true && !this.toldAlive.has(id)) {
        this.toldAlive.add(id);
        this.logger.warn({ nodeId: id, silentMs }, 'node answers but its load reports stopped; balancing it on this router\'s own counts');
      }
    } finally {
      this.probing.delete(id);
    }
  }
}
