import {
  LoadReportSchema,
  ProgressReportSchema,
  SIGNATURE_HEADER,
  decodeJson,
  type CallProgress,
  type LoadReport,
  type Subjects,
} from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ReportAdmission, ReportGate } from './ReportGate.js';

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

/** Bounds on what a report may say before it is believed. */
export interface ReportLimits {
  /** A report stamped (`at`) more than this ahead of this router's clock is dropped, ms. */
  maxFutureSkewMs: number;
  /** A report stamped more than this behind this router's clock (old, replayed, or a clock far behind) is dropped, ms. */
  maxAgeMs: number;
  /** Most running calls' progress kept per node; a report carrying more is cut to this. */
  maxProgressPerNode: number;
}

export const DEFAULT_REPORT_LIMITS: ReportLimits = { maxFutureSkewMs: 10_000, maxAgeMs: 30_000, maxProgressPerNode: 4096 };

/** Why reports were dropped, counted (`droppedReports`, and a warning at most once a minute per reason). */
export type ReportDropReason = Exclude<ReportAdmission, 'ok'> | 'malformed' | 'subject-mismatch' | 'clock-skew' | 'stale-seq';

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
  private readonly limits: ReportLimits;
  private readonly dropped = new Map<ReportDropReason, number>();
  private readonly warnedAt = new Map<ReportDropReason, number>();

  /**
   * `gate` admits reports only from nodes in the accepted registry view, signed when their record is
   * (without it, as in unit tests, every well-formed report is taken).
   */
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    private readonly gate?: ReportGate,
    limits: Partial<ReportLimits> = {},
  ) {
    this.limits = { ...DEFAULT_REPORT_LIMITS, ...limits };
  }

  start(): void {
    this.link = { connected: !this.nc.isClosed() };
    void this.followStatus();
    const loadPrefix = this.subjects.allLoad.slice(0, -1);
    const progressPrefix = this.subjects.allProgress.slice(0, -1);
    this.subscriptions.push(
      this.nc.subscribe(this.subjects.allLoad, {
        callback: (err, msg) => {
          if (err) return this.logger.warn({ err }, 'load subscription failed');
          const nodeId = this.admitted(msg, loadPrefix);
          if (nodeId === undefined) return;
          const decoded = decodeJson(LoadReportSchema, msg.data);
          if (!decoded.ok) return this.drop('malformed', msg.subject, decoded.error);
          if (decoded.value.nodeId !== nodeId) return this.drop('subject-mismatch', msg.subject);
          const receivedAt = Date.now();
          if (!this.plausibleTime(decoded.value.at, receivedAt)) return this.drop('clock-skew', msg.subject);
          this.acceptLoad(decoded.value, receivedAt);
        },
      }),
      this.nc.subscribe(this.subjects.allProgress, {
        callback: (err, msg) => {
          if (err) return this.logger.warn({ err }, 'progress subscription failed');
          const nodeId = this.admitted(msg, progressPrefix);
          if (nodeId === undefined) return;
          const decoded = decodeJson(ProgressReportSchema, msg.data);
          if (!decoded.ok) return this.drop('malformed', msg.subject, decoded.error);
          if (decoded.value.nodeId !== nodeId) return this.drop('subject-mismatch', msg.subject);
          const receivedAt = Date.now();
          if (!this.plausibleTime(decoded.value.at, receivedAt)) return this.drop('clock-skew', msg.subject);
          this.acceptProgress(nodeId, decoded.value.calls, receivedAt);
        },
      }),
    );
  }

  /** Reports dropped so far, by reason. */
  droppedReports(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.dropped);
  }

  /** Number of nodes this view holds state for. */
  get nodeCount(): number {
    return this.nodes.size;
  }

  /**
   * Records a load report (exposed for tests; the NATS subscription calls it after dropping reports
   * stamped further than the allowed skew from this router's clock). A report older (by `seq` and `at`)
   * than the last of its node is dropped. With the skew rule, a forged or buggy huge `seq` or far-future
   * `at` cannot block the node's real reports for longer than the allowed skew.
   */
  acceptLoad(report: LoadReport, receivedAt: number): void {
    const node = this.entry(report.nodeId);
    // A restarted agent starts its sequence again, so only drop an older report of the same run (by time).
    if (node.load && report.seq <= node.load.seq && report.at <= node.load.at) return this.drop('stale-seq', report.nodeId);
    const refreshed: Record<string, number> = {};
    for (const [tool, stats] of Object.entries(report.tools)) {
      const before = node.load?.tools[tool]?.completed;
      const last = node.toolRefreshedAt[tool];
      refreshed[tool] = before === undefined || stats.completed !== before || last === undefined ? receivedAt : last;
    }
    // Only the tools of the latest report are kept: a node cannot grow this map by naming new tools.
    node.toolRefreshedAt = refreshed;
    node.load = report;
    node.loadReceivedAt = receivedAt;
  }

  /** Merges a progress report (exposed for tests; the NATS subscription calls it). */
  acceptProgress(nodeId: string, calls: readonly CallProgress[], receivedAt: number): void {
    const node = this.entry(nodeId);
    for (const progress of calls) {
      const previous = node.progress.get(progress.callId);
      if (!previous && node.progress.size >= this.limits.maxProgressPerNode) continue;
      node.progress.set(progress.callId, { progress, receivedAt, previousAt: previous?.receivedAt });
    }
    node.progressReceivedAt = receivedAt;
    this.prune(node, receivedAt);
  }

  /** The node id of a report's subject when the gate admits the report; undefined (counted) otherwise. */
  private admitted(msg: Msg, prefix: string): string | undefined {
    const nodeId = msg.subject.startsWith(prefix) ? msg.subject.slice(prefix.length) : '';
    if (!this.gate) return nodeId;
    const verdict = this.gate.admit(nodeId, msg.subject, msg.data, msg.headers?.get(SIGNATURE_HEADER) || undefined);
    if (verdict === 'ok') return nodeId;
    this.drop(verdict, msg.subject);
    return undefined;
  }

  private plausibleTime(at: number, receivedAt: number): boolean {
    return at - receivedAt <= this.limits.maxFutureSkewMs && receivedAt - at <= this.limits.maxAgeMs;
  }

  private drop(reason: ReportDropReason, where: string, error?: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    const now = Date.now();
    if (now - (this.warnedAt.get(reason) ?? 0) < 60_000) return;
    this.warnedAt.set(reason, now);
    this.logger.warn({ reason, where: where.slice(0, 200), ...(error ? { error: error.slice(0, 200) } : {}), droppedSoFar: this.dropped.get(reason) }, 'dropping reports (logged at most once a minute per reason)');
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
