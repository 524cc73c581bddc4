/**
 * Plain data a load-aware balancer reads about one node at one moment. The router assembles it from the
 * node's load and progress reports (shared by every router through NATS) and its own bookkeeping; unit
 * tests build it by hand.
 */
export interface LoadSignals {
  /** The node's latest load report, when it is fresh enough to trust its counts (else absent). */
  readonly report?: ReportedLoad;
  /** Running calls whose progress the node reported (only with a fresh report), freshest first. */
  readonly progress: readonly ReportedCallProgress[];
  /**
   * Completed-call latency per `<server>/<tool>` the node reported. Kept even when the report is too old
   * for its counts: how long a tool takes on a node changes far more slowly than how busy the node is.
   */
  readonly reportedTools: Readonly<Record<string, ToolLatencyEstimate>>;
  /** This router's own calls on the node. */
  readonly own: OwnCallSignals;
  /** Latencies this router measured on the node. */
  readonly measured: MeasuredLatency;
}

/** How long a tool takes on a node, and how old that knowledge is. */
export interface ToolLatencyEstimate {
  /** EWMA of call duration, ms. */
  readonly ewmaMs: number;
  /** Time since a call of this tool last completed there (the estimate's last refresh), ms. */
  readonly ageMs: number;
}

/** The counts of a node's load report. */
export interface ReportedLoad {
  /** How long ago this router received it, ms. */
  readonly ageMs: number;
  readonly inflight: number;
  readonly queued: number;
  readonly capacity: number;
}

/** One running call on the node, as its latest progress report described it. */
export interface ReportedCallProgress {
  /** `<server>/<tool>`. */
  readonly tool: string;
  readonly progress: number;
  readonly total?: number;
  /** How long the call had been running when the progress was reported, ms. */
  readonly elapsedMs: number;
  /** How long ago this router received that progress, ms. */
  readonly ageMs: number;
}

/** One call this router placed on the node that the node's report does not show yet. */
export interface UnseenCall {
  /** `<server>/<tool>`, or undefined for requests that are not tool calls. */
  readonly tool: string | undefined;
  /** Time since this router placed it, ms. */
  readonly elapsedMs: number;
}

/** This router's calls on the node, split by what the node's latest report can already show. */
export interface OwnCallSignals {
  readonly outstanding: number;
  /**
   * Own calls the report cannot include: still in this router's queue, or sent after the report was
   * made. All own outstanding calls when there is no fresh report.
   */
  readonly unseen: readonly UnseenCall[];
  /** Own calls the report counted that have finished since (the report over-counts them). */
  readonly finishedSinceReport: number;
}

/** What this router measured itself. */
export interface MeasuredLatency {
  /** Finagle-style peak EWMA of response time over every call on the node (decayed to now), ms; absent before the first sample. */
  readonly peakEwmaMs?: number;
  /** Response time per `<server>/<tool>`. */
  readonly tools: Readonly<Record<string, ToolLatencyEstimate>>;
}

/** Signals of a node this router knows nothing about beyond its own outstanding count. */
export function ownCountsOnly(outstanding: number): LoadSignals {
  return {
    progress: [],
    reportedTools: {},
    own: { outstanding, unseen: Array.from({ length: outstanding }, () => ({ tool: undefined, elapsedMs: 0 })), finishedSinceReport: 0 },
    measured: { tools: {} },
  };
}
