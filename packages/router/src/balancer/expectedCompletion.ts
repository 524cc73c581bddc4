import type { LoadSignals, ReportedCallProgress, ToolLatencyEstimate } from './LoadSignals.js';

/** What a progress-aware balancer expects of one node for one new call. */
export interface CompletionEstimate {
  /** Expected time from placing the call now to its answer, ms: `workMs / slots + serviceMs`. */
  readonly ms: number;
  /** Work on the node ahead of the new call (remaining time of running calls, queued and unseen calls), ms of one slot. */
  readonly workMs: number;
  /** Expected duration of the call itself once it runs there, ms. */
  readonly serviceMs: number;
}

/**
 * How long `tool` takes on the node as far as anyone measured: the node's own EWMA from its load reports
 * (it sees every router's calls), else this router's measurement.
 */
export function knownService(signals: LoadSignals, tool: string | undefined): ToolLatencyEstimate | undefined {
  if (tool === undefined) return undefined;
  return signals.reportedTools[tool] ?? signals.measured.tools[tool];
}

/** Typical duration of a call on the node whatever its tool (for calls whose tool is unknown), ms. */
function typicalCallMs(signals: LoadSignals): number | undefined {
  const reported = Object.values(signals.reportedTools);
  const values = reported.length > 0 ? reported : Object.values(signals.measured.tools);
  return values.length > 0 ? values.reduce((a, b) => a + b.ewmaMs, 0) / values.length : undefined;
}

/**
 * Remaining time of a running call from its reported progress: a call that did `progress` of `total` in
 * `elapsed` needs `elapsed × (total − progress) / progress` more at that rate (less the time since the
 * report). Without a usable total, what its tool usually takes minus what it already ran, but never less
 * than a quarter of that (a call past its usual time is not about to end for sure).
 */
export function remainingMs(call: ReportedCallProgress, serviceMs: number): number {
  const elapsed = call.elapsedMs + call.ageMs;
  if (call.total !== undefined && call.total > 0 && call.progress > 0) {
    if (call.progress >= call.total) return 0;
    return Math.max(0, (call.elapsedMs * (call.total - call.progress)) / call.progress - call.ageMs);
  }
  return Math.max(serviceMs - elapsed, serviceMs / 4);
}

/**
 * Expected completion time of a new call of `tool` on one node: the work already there, spread over its
 * slots, plus `serviceMs`, the new call's own expected duration there (the caller decides it, see
 * `ProgressAwareBalancer`; it also stands in for tools the node has no statistics for).
 *
 * The work is, from the node's fresh load report: the remaining time of running calls (from their
 * progress: see {@link remainingMs}; half a typical call for running calls that reported none), a typical
 * call per queued call; then the router's own calls the report cannot show yet (queued in this router or
 * sent after the report), each a full call of its tool less what it already ran. Own calls that finished
 * since the report are taken off its counts. Without a fresh report only the router's own calls count.
 */
export function expectedCompletion(signals: LoadSignals, capacity: number, tool: string | undefined, serviceMs: number): CompletionEstimate {
  const serviceOf = (t: string | undefined): number => (t === tool ? serviceMs : (knownService(signals, t)?.ewmaMs ?? serviceMs));
  const typical = typicalCallMs(signals) ?? serviceMs;
  const report = signals.report;
  const slots = Math.max(1, report?.capacity ?? capacity);
  let workMs = 0;
  if (report) {
    const visible = Math.max(0, report.inflight + report.queued - signals.own.finishedSinceReport);
    const running = Math.min(visible, slots);
    const queued = visible - running;
    // Progress entries can outlive their calls by a report or two; never count more than are running.
    const withProgress = signals.progress.slice(0, running);
    for (const call of withProgress) workMs += remainingMs(call, serviceOf(call.tool));
    workMs += ((running - withProgress.length) * typical) / 2;
    workMs += queued * typical;
  }
  for (const call of signals.own.unseen) {
    const s = call.tool === undefined ? typical : serviceOf(call.tool);
    workMs += Math.max(s - call.elapsedMs, s / 4);
  }
  return { ms: workMs / slots + serviceMs, workMs, serviceMs };
}
