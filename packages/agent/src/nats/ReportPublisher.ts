import {
  PROTOCOL_VERSION,
  encodeJson,
  type CallProgress,
  type LoadReport,
  type NodeEvent,
  type ProgressReport,
  type Subjects,
} from '@flotilla/protocol';
import type { CallTracker } from '../calls/CallTracker.js';
import type { EventLoopLag } from '../health/EventLoopLag.js';
import type { NatsLink } from './NatsLink.js';

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
}

/**
 * Publishes the node's load (every interval and on change), the coalesced progress of its calls, and its
 * lifecycle events on NATS. Changes between two reports are merged: a burst of 1000 call starts is a
 * handful of load reports, and a call reporting progress every millisecond appears once per report with
 * its latest value.
 */
export class ReportPublisher {
  private seq = 0;
  private lastLoadAt = 0;
  private loadTimer: NodeJS.Timeout | undefined;
  private lastProgressAt = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly pendingProgress = new Map<string, CallProgress>();
  private readonly ticker: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly minGapMs: number;
  private readonly onChange = (): void => this.scheduleLoad();
  private readonly onProgress = (p: CallProgress): void => this.queueProgress(p);

  constructor(private readonly options: ReportPublisherOptions) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.minGapMs = options.minGapMs ?? 100;
    options.tracker.on('change', this.onChange);
    options.tracker.on('progress', this.onProgress);
    this.ticker = setInterval(() => {
      options.lag.sample();
      this.publishLoad();
    }, this.intervalMs);
    this.ticker.unref();
  }

  /** Publishes a node event (joined, draining, left). */
  publishEvent(type: NodeEvent['type'], reason?: string): boolean {
    const event: NodeEvent = { v: PROTOCOL_VERSION, type, nodeId: this.options.nodeId, at: Date.now(), ...(reason ? { reason } : {}) };
    return this.options.link.publish(this.options.subjects.events, encodeJson(event));
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
      tools: this.options.tracker.toolLatency(),
    };
    this.options.link.publish(this.options.subjects.load(this.options.nodeId), encodeJson(report));
  }

  stop(): void {
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

  private queueProgress(progress: CallProgress): void {
    this.pendingProgress.set(progress.callId, progress);
    if (this.progressTimer) return;
    const wait = Math.max(0, this.lastProgressAt + this.minGapMs - Date.now());
    this.progressTimer = setTimeout(() => this.flushProgress(), wait);
    this.progressTimer.unref();
  }

  private flushProgress(): void {
    this.progressTimer = undefined;
    if (this.pendingProgress.size === 0) return;
    this.lastProgressAt = Date.now();
    const report: ProgressReport = { v: PROTOCOL_VERSION, nodeId: this.options.nodeId, at: this.lastProgressAt, calls: [...this.pendingProgress.values()] };
    this.pendingProgress.clear();
    this.options.link.publish(this.options.subjects.progress(this.options.nodeId), encodeJson(report));
  }
}
