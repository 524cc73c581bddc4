import {
  PROTOCOL_VERSION,
  SIGNATURE_HEADER,
  encodeJson,
  type CallProgress,
  type LoadReport,
  type NodeEvent,
  type ProgressReport,
  type Subjects,
} from '@flotilla/protocol';
import type { Context } from '@opentelemetry/api';
import type { CallTracker } from '../calls/CallTracker.js';
import type { TrackedCall } from '../calls/TrackedCall.js';
import type { EventLoopLag } from '../health/EventLoopLag.js';
import type { NatsLink } from './NatsLink.js';

/** The kinds of message the publisher sends, as counted by `flotilla_agent_reports_published_total{kind}`. */
export type ReportKind = 'load' | 'progress' | 'event';

/** Options of {@link ReportPublisher}. */
export interface ReportPublisherOptions {
  nodeId: string;
  subjects: Subjects;
  link: NatsLink;
  tracker: CallTracker;
  lag: EventLoopLag;
  /** Period of load reports, ms (default 1000). */
  intervalMs?: number;
  /** Least time between two reports of one kind, ms (default 100: at most ~10/s). */
  minGapMs?: number;
  /** Called for every message NATS accepted (not for those dropped while disconnected). */
  onPublished?: (kind: ReportKind) => void;
  /** Signs a message (its subject is the context); the signature goes in the `Flotilla-Sig` header. Unsigned without it. */
  sign?: (subject: string, payload: Uint8Array) => string | undefined;
}

/**
 * Publishes the node's load (every interval and on change), the coalesced progress of its calls, and its
 * lifecycle events on NATS. Changes between two reports are merged: a burst of 1000 call starts is a
 * handful of load reports, and a call reporting progress every millisecond appears once per report with
 * its latest value.
 *
 * Trace context in the NATS headers: a progress report that carries a single call continues that call's
 * trace (its `traceparent` is the agent's call span). A report that merges several calls carries none,
 * since a message has one parent and picking one would mislead; the call ids in the payload join it to
 * the calls. Load reports and events are about the node, not a call, and carry none either.
 */
export class ReportPublisher {
  private seq = 0;
  private lastLoadAt = 0;
  private loadTimer: NodeJS.Timeout | undefined;
  private lastProgressAt = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly pendingProgress = new Map<string, { progress: CallProgress; trace: Context | undefined }>();
  private readonly ticker: NodeJS.Timeout;
  private stopped = false;
  private readonly intervalMs: number;
  private readonly minGapMs: number;
  private readonly onChange = (): void => this.scheduleLoad();
  private readonly onProgress = (p: CallProgress, call: TrackedCall): void => this.queueProgress(p, call.traceContext);

  constructor(private readonly options: ReportPublisherOptions) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.minGapMs = options.minGapMs ?? 100;
    options.tracker.on('change', this.onChange);
    options.tracker.on('progress', this.onProgress);
    this.ticker = setInterval(() => {
      // After the timers phase: when the loop was stalled across this tick, the event-loop delay monitor's
      // own (equally late) timer must record the stall before the window is read and started over, or the
      // stall is lost to both windows.
      setImmediate(() => {
        if (this.stopped) return;
        options.lag.sample();
        this.publishLoad();
      });
    }, this.intervalMs);
    this.ticker.unref();
  }

  /** Publishes a node event (joined, draining, left). */
  publishEvent(type: NodeEvent['type'], reason?: string): boolean {
    const event: NodeEvent = { v: PROTOCOL_VERSION, type, nodeId: this.options.nodeId, at: Date.now(), ...(reason ? { reason } : {}) };
    return this.send('event', this.options.subjects.events, encodeJson(event));
  }

  /** Publishes a load report now. */
  publishLoad(): void {
    if (this.loadTimer) {
      clearTimeout(this.loadTimer);
      this.loadTimer = undefined;
    }
    this.lastLoadAt = Date.now();
    const load = this.options.tracker.load();
    const report: LoadReport = {
      v: PROTOCOL_VERSION,
      nodeId: this.options.nodeId,
      seq: this.seq++,
      at: this.lastLoadAt,
      inflight: load.inflight,
      queued: load.queued,
      capacity: load.capacity,
      eventLoopLagMs: this.options.lag.latestMs,
      draining: load.draining,
      tasks: load.tasks,
      tools: this.options.tracker.toolLatency(),
    };
    this.send('load', this.options.subjects.load(this.options.nodeId), encodeJson(report));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.ticker);
    if (this.loadTimer) clearTimeout(this.loadTimer);
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.options.tracker.off('change', this.onChange);
    this.options.tracker.off('progress', this.onProgress);
  }

  private scheduleLoad(): void {
    if (this.loadTimer) return;
    const wait = Math.max(0, this.lastLoadAt + this.minGapMs - Date.now());
    // Even with no wait, a timer merges the changes of one burst (many calls admitted in one tick).
    this.loadTimer = setTimeout(() => {
      this.loadTimer = undefined;
      this.publishLoad();
    }, wait);
    this.loadTimer.unref();
  }

  private queueProgress(progress: CallProgress, trace: Context | undefined): void {
    this.pendingProgress.set(progress.callId, { progress, trace });
    if (this.progressTimer) return;
    const wait = Math.max(0, this.lastProgressAt + this.minGapMs - Date.now());
    this.progressTimer = setTimeout(() => this.flushProgress(), wait);
    this.progressTimer.unref();
  }

  private flushProgress(): void {
    this.progressTimer = undefined;
    if (this.pendingProgress.size === 0) return;
    this.lastProgressAt = Date.now();
    const pending = [...this.pendingProgress.values()];
    this.pendingProgress.clear();
    const report: ProgressReport = { v: PROTOCOL_VERSION, nodeId: this.options.nodeId, at: this.lastProgressAt, calls: pending.map((p) => p.progress) };
    const trace = pending.length === 1 ? pending[0]!.trace : undefined;
    this.send('progress', this.options.subjects.progress(this.options.nodeId), encodeJson(report), trace);
  }

  private send(kind: ReportKind, subject: string, payload: Uint8Array, trace?: Context): boolean {
    const sig = this.options.sign?.(subject, payload);
    const sent = this.options.link.publish(subject, payload, trace, sig ? { [SIGNATURE_HEADER]: sig } : {});
    if (sent) this.options.onPublished?.(kind);
    return sent;
  }
}
