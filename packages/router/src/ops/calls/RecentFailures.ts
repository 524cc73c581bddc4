import type { FailedCall } from '../dashboard/DashboardSnapshot.js';

/** Failed calls kept by default: enough for a screen of context, small enough to ship every second. */
export const RECENT_FAILURES_CAPACITY = 50;

/** Longest error text kept per call: the start says what went wrong; whole tool outputs do not belong here. */
export const FAILURE_ERROR_MAX_CHARS = 300;

/**
 * The last failed calls (any outcome but `ok`), newest first, in a fixed-size ring: memory stays bounded
 * however many calls fail. Feeds the dashboard's "recent failed calls".
 */
export class RecentFailures {
  private readonly ring: FailedCall[] = [];
  private next = 0;

  constructor(readonly capacity = RECENT_FAILURES_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  add(failure: FailedCall): void {
    const kept = failure.error !== null && failure.error.length > FAILURE_ERROR_MAX_CHARS ? { ...failure, error: `${failure.error.slice(0, FAILURE_ERROR_MAX_CHARS - 1)}…` } : failure;
    if (this.ring.length < this.capacity) this.ring.push(kept);
    else this.ring[this.next] = kept;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  list(): FailedCall[] {
    const oldestFirst = this.ring.length < this.capacity ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return [...oldestFirst].reverse();
  }
}
