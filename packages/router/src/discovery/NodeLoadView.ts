import {
  LoadReportSchema,
  ProgressReportSchema,
  decodeJson,
  type CallProgress,
  type LoadReport,
  type Subjects,
} from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';

/** The latest load and progress a node published, with when this router received them (the `/api/v1/nodes` shape). */
export interface NodeLoadSnapshot {
  load?: LoadReport;
  loadReceivedAt?: number;
  /** Latest progress of each call still believed running, from the coalesced progress reports. */
  progress: CallProgress[];
  progressReceivedAt?: number;
}

/** One running call's latest progress and when it arrived. */
export interface ReceivedProgress {
  readonly progress: CallProgress;
  readonly receivedAt: number;
}

/** What the load-aware balancer reads about one node. */
export interface NodeReports {
  readonly load?: LoadReport;
  readonly loadReceivedAt?: number;
  /** Per `<server>/<tool>` of the load report: when its completed count last grew (its EWMA's last refresh), epoch ms. */
  readonly toolRefreshedAt: Readonly<Record<string, number>>;
  /** Freshest first. */
  readonly progress: readonly ReceivedProgress[];
}

/** Where this router's NATS connection stands, which says whether silence from a node means anything. */
export interface NatsLinkStatus {
  readonly connected: boolean;
  /** Epoch ms of the last reconnect after a loss (undefined while the first connection holds): reports need a moment to resume. */
  readonly reconnectedAt?: number;
}

interface ProgressEntry {
  progress: CallProgress;
  receivedAt: number;
  /** When the previous progress of this call arrived: tells how often the call reports. */
  previousAt: number | undefined;
}

interface NodeEntry {
  load?: LoadReport;
  loadReceivedAt?: number;
  toolRefreshedAt: Record<string, number>;
  progress: Map<string, ProgressEntry>;
  progressReceivedAt?: number;
}

/**
 * A progress entry not refreshed for this long (or for three of its own reporting intervals, if longer) is
 * taken for a call that ended: reports only carry calls that made progress, so an ended call just stops
 * appearing.
 */
const PROGRESS_MIN_TTL_MS = 2000;
const PROGRESS_MAX_TTL_MS = 60_000;

/**
 * Follows the load (`<prefix>.v1.load.*`) and progress (`<prefix>.v1.progress.*`) reports agents publish
 * on NATS, keeping the latest per node, so every router replica shares one view of node load. Progress
 * reports are coalesced (each carries only the calls that progressed since the previous one), so they are
 * merged per call id; an entry leaves when this router's own call ends ({@link callEnded}) or when it
 * stops being refreshed. Load-aware balancers read it; `/api/v1/nodes` shows it.
 */
export class NodeLoadView {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly subscriptions: Subscription[] = [];
  private link: NatsLinkStatus = { connected: true };
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.link = { connected: !this.nc.isClosed() };
    void this.followStatus();
    this.subscriptions.push(
      this.nc.subscribe(this.subjects.allLoad, {
        callback: (err, msg) => {
          if (err) return this.logger.warn({ err }, 'load subscription failed');
          const decoded = decodeJson(LoadReportSchema, msg.data);
          if (!decoded.ok) return this.logger.debug({ subject: msg.subject, error: decoded.error }, 'ignoring malformed load report');
          this.acceptLoad(decoded.value, Date.now());
        },
      }),
      this.nc.subscribe(this.subjects.allProgress, {
        callback: (err, msg) => {
          if (err) return this.logger.warn({ err }, 'progress subscription failed');
          const decoded = decodeJson(ProgressReportSchema, msg.data);
          if (!decoded.ok) return this.logger.debug({ subject: msg.subject, error: decoded.error }, 'ignoring malformed progress report');
          this.acceptProgress(decoded.value.nodeId, decoded.value.calls, Date.now());
        },
      }),
    );
  }

  /** Records a load report (exposed for tests; the NATS subscription calls it). */
  acceptLoad(report: LoadReport, receivedAt: number): void {
    const node = this.entry(report.nodeId);
    // A restarted agent starts its sequence again, so only drop an older report of the same run (by time).
    if (node.load && report.seq <= node.load.seq && report.at <= node.load.at) return;
    for (const [tool, stats] of Object.entries(report.tools)) {
      const before = node.load?.tools[tool]?.completed;
      if (before === undefined || stats.completed !== before) node.toolRefreshedAt[tool] = receivedAt;
    }
    node.load = report;
    node.loadReceivedAt = receivedAt;
  }

  /** Merges a progress report (exposed for tests; the NATS subscription calls it). */
  acceptProgress(nodeId: string, calls: readonly CallProgress[], receivedAt: number): void {
    const node = this.entry(nodeId);
    for (const progress of calls) {
      const previous = node.progress.get(progress.callId);
      node.progress.set(progress.callId, { progress, receivedAt, previousAt: previous?.receivedAt });
    }
    node.progressReceivedAt = receivedAt;
    this.prune(node, receivedAt);
  }

  /** What the node last reported, if anything (the shape `/api/v1/nodes` shows). */
  snapshot(nodeId: string): NodeLoadSnapshot | undefined {
    const node = this.nodes.get(nodeId);
    if (!node) return undefined;
    this.prune(node, Date.now());
    return {
      ...(node.load ? { load: node.load } : {}),
      ...(node.loadReceivedAt !== undefined ? { loadReceivedAt: node.loadReceivedAt } : {}),
      progress: [...node.progress.values()].map((e) => e.progress),
      ...(node.progressReceivedAt !== undefined ? { progressReceivedAt: node.progressReceivedAt } : {}),
    };
  }

  /** The node's latest load report and when it arrived (cheap: no progress work). */
  latestLoad(nodeId: string): { load: LoadReport; receivedAt: number } | undefined {
    const node = this.nodes.get(nodeId);
    return node?.load && node.loadReceivedAt !== undefined ? { load: node.load, receivedAt: node.loadReceivedAt } : undefined;
  }

  /** The node's latest load report and the progress of its running calls, freshest first. */
  reports(nodeId: string, now: number): NodeReports {
    const node = this.nodes.get(nodeId);
    if (!node) return { progress: [], toolRefreshedAt: {} };
    this.prune(node, now);
    const progress = [...node.progress.values()]
      .sort((a, b) => b.receivedAt - a.receivedAt)
      .map((e): ReceivedProgress => ({ progress: e.progress, receivedAt: e.receivedAt }));
    return {
      ...(node.load ? { load: node.load } : {}),
      ...(node.loadReceivedAt !== undefined ? { loadReceivedAt: node.loadReceivedAt } : {}),
      toolRefreshedAt: node.toolRefreshedAt,
      progress,
    };
  }

  /** This router's call `callId` on the node ended: its progress no longer describes running work. */
  callEnded(nodeId: string, callId: string): void {
    this.nodes.get(nodeId)?.progress.delete(callId);
  }

  /** Whether this router's NATS connection is up, and since when. */
  natsStatus(): NatsLinkStatus {
    return this.link;
  }

  /** Drops what is known about a node that left. */
  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.nodes.clear();
  }

  private async followStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (this.stopped) break;
        if (s.type === 'disconnect') this.natsStatusChanged(false, Date.now());
        else if (s.type === 'reconnect') this.natsStatusChanged(true, Date.now());
      }
    } catch (err) {
      this.logger.debug({ err }, 'NATS status stream ended');
    }
  }

  /** Records that this router's NATS connection went down or came back (the status stream calls it; exposed for tests). */
  natsStatusChanged(connected: boolean, at: number): void {
    if (connected === this.link.connected) return;
    if (connected) {
      this.link = { connected: true, reconnectedAt: at };
      this.logger.info('NATS connection back: load reports resume');
    } else {
      this.link = { connected: false };
      this.logger.warn("NATS connection lost: load reports paused, balancing on this router's own counts");
    }
  }

  private prune(node: NodeEntry, now: number): void {
    for (const [callId, e] of node.progress) {
      const interval = e.previousAt === undefined ? 0 : e.receivedAt - e.previousAt;
      const ttl = Math.min(PROGRESS_MAX_TTL_MS, Math.max(PROGRESS_MIN_TTL_MS, 3 * interval));
      if (now - e.receivedAt > ttl) node.progress.delete(callId);
    }
  }

  private entry(nodeId: string): NodeEntry {
    let node = this.nodes.get(nodeId);
    if (!node) this.nodes.set(nodeId, (node = { progress: new Map(), toolRefreshedAt: {} }));
    return node;
  }
}
