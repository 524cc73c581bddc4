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

/** The latest load and progress a node published, with when this router received them. */
export interface NodeLoadSnapshot {
  load?: LoadReport;
  loadReceivedAt?: number;
  /** Latest progress per call id, from the coalesced progress reports. */
  progress: CallProgress[];
  progressReceivedAt?: number;
}

/**
 * Follows the load (`<prefix>.v1.load.*`) and progress (`<prefix>.v1.progress.*`) reports agents publish
 * on NATS, keeping the latest per node. Load-aware balancers read it; `/api/v1/nodes` shows it.
 */
export class NodeLoadView {
  private readonly nodes = new Map<string, NodeLoadSnapshot>();
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.subscriptions.push(
      this.nc.subscribe(this.subjects.allLoad, {
        callback: (err, msg) => {
          if (err) return this.logger.warn({ err }, 'load subscription failed');
          const decoded = decodeJson(LoadReportSchema, msg.data);
          if (!decoded.ok) return this.logger.debug({ subject: msg.subject, error: decoded.error }, 'ignoring malformed load report');
          const report = decoded.value;
          const node = this.entry(report.nodeId);
          // A restarted agent starts its sequence again, so only drop an older report of the same run (by time).
          if (node.load && report.seq <= node.load.seq && report.at <= node.load.at) return;
          node.load = report;
          node.loadReceivedAt = Date.now();
        },
      }),
      this.nc.subscribe(this.subjects.allProgress, {
        callback: (err, msg) => {
          if (err) return this.logger.warn({ err }, 'progress subscription failed');
          const decoded = decodeJson(ProgressReportSchema, msg.data);
          if (!decoded.ok) return this.logger.debug({ subject: msg.subject, error: decoded.error }, 'ignoring malformed progress report');
          const node = this.entry(decoded.value.nodeId);
          node.progress = decoded.value.calls;
          node.progressReceivedAt = Date.now();
        },
      }),
    );
  }

  /** What the node last reported, if anything. */
  snapshot(nodeId: string): NodeLoadSnapshot | undefined {
    return this.nodes.get(nodeId);
  }

  /** Drops what is known about a node that left. */
  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.nodes.clear();
  }

  private entry(nodeId: string): NodeLoadSnapshot {
    let node = this.nodes.get(nodeId);
    if (!node) this.nodes.set(nodeId, (node = { progress: [] }));
    return node;
  }
}
