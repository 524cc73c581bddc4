import type { UnseenCall } from '../balancer/LoadSignals.js';

/** Time a call needs to reach a node's admission; a call sent later than a report's arrival minus this is not in it. */
const REPORT_TRANSIT_MS = 5;
/** How long finished calls are remembered (longer than any report is trusted). */
const FINISHED_MEMORY_MS = 10_000;
const FINISHED_MAX = 8192;

interface OwnCall {
  readonly tool: string | undefined;
  readonly placedAt: number;
  sentAt: number | undefined;
}

/** What a node's report cannot show about this router's calls. */
export interface OwnCallsVersusReport {
  readonly unseen: UnseenCall[];
  /** Call ids of the unseen calls (their progress, if any arrived, is already counted as unseen work). */
  readonly unseenCallIds: ReadonlySet<string>;
  readonly finishedSinceReport: number;
}

/**
 * This router's calls on one node: when each was placed (entered the router's queue for the node), sent,
 * and finished. It is what corrects a node's load report for its lag: calls sent after the report are
 * not in its counts yet, and calls that finished since are still in them.
 */
export class OwnCallLedger {
  private readonly calls = new Map<string, OwnCall>();
  /** Sent-at and finished-at of recently finished calls that had been sent, oldest first, from `head` on. */
  private finished: Array<{ sentAt: number; finishedAt: number }> = [];
  private head = 0;

  get outstanding(): number {
    return this.calls.size;
  }

  placed(callId: string, tool: string | undefined, now: number): void {
    this.calls.set(callId, { tool, placedAt: now, sentAt: undefined });
  }

  sent(callId: string, now: number): void {
    const call = this.calls.get(callId);
    if (call) call.sentAt = now;
  }

  ended(callId: string, now: number): void {
    const call = this.calls.get(callId);
    if (!call) return;
    this.calls.delete(callId);
    if (call.sentAt === undefined) return;
    this.finished.push({ sentAt: call.sentAt, finishedAt: now });
    this.forgetOld(now);
  }

  /**
   * Forgets finishes past memory by moving the start, and compacts now and then: O(1) a call on average.
   * (Filtering the whole list whenever its oldest entry aged out did it on every call once calls had run
   * for 10 s: thousands of entries copied per call, 2 % of the router's time at one client.)
   */
  private forgetOld(now: number): void {
    const f = this.finished;
    while (this.head < f.length && (f.length - this.head > FINISHED_MAX || now - f[this.head]!.finishedAt > FINISHED_MEMORY_MS)) this.head++;
    if (this.head >= 1024 && this.head * 2 >= f.length) {
      this.finished = f.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Splits the calls against a report received at `reportReceivedAt` (undefined: no usable report, so every
   * outstanding call is unseen).
   */
  versusReport(reportReceivedAt: number | undefined, now: number): OwnCallsVersusReport {
    const unseen: UnseenCall[] = [];
    const unseenCallIds = new Set<string>();
    const madeBefore = reportReceivedAt === undefined ? undefined : reportReceivedAt - REPORT_TRANSIT_MS;
    for (const [callId, call] of this.calls) {
      if (madeBefore === undefined || call.sentAt === undefined || call.sentAt >= madeBefore) {
        unseen.push({ tool: call.tool, elapsedMs: now - call.placedAt });
        unseenCallIds.add(callId);
      }
    }
    let finishedSinceReport = 0;
    if (madeBefore !== undefined) {
      for (let i = this.finished.length - 1; i >= this.head; i--) {
        const f = this.finished[i]!;
        if (f.finishedAt < madeBefore) break;
        if (f.sentAt < madeBefore) finishedSinceReport += 1;
      }
    }
    return { unseen, unseenCallIds, finishedSinceReport };
  }
}
