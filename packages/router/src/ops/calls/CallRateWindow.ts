import type { CallOutcome } from '../../forwarding/CallObserver.js';

/** Default length of the sliding window, s. */
export const RATE_WINDOW_S = 60;

/** Counts of one tool (or all tools) over the window. */
export interface WindowCounts {
  calls: number;
  /** Failed in the mesh: any outcome but `ok`, `tool_error` and `cancelled` (the documented error ratio). */
  errors: number;
  toolErrors: number;
  totalSeconds: number;
}

/** Rates over the window, derived from {@link WindowCounts}. */
export interface WindowRates extends WindowCounts {
  /** Calls per second. */
  callRate: number;
  /** `errors / calls`; null without calls. */
  errorRate: number | null;
  /** Mean time to answer, ms; null without calls. */
  meanMs: number | null;
}

/** Outcomes that are not failures of the mesh: the call was answered, or the client gave up. */
const NOT_MESH_ERRORS: ReadonlySet<CallOutcome> = new Set(['ok', 'tool_error', 'cancelled']);

interface Slot {
  second: number;
  perTool: Map<string, WindowCounts>;
}

const empty = (): WindowCounts => ({ calls: 0, errors: 0, toolErrors: 0, totalSeconds: 0 });

/**
 * Call and error rates per tool over a sliding window, from the router's own answers: one slot per
 * second in a ring, so recording is O(1) and memory is bounded by window × tools (tool names are catalog
 * names or `(unknown)`). Prometheus computes the same from `flotilla_router_calls_total`; this exists so
 * the dashboard needs no Prometheus.
 */
export class CallRateWindow {
  private readonly slots: Slot[];
  private readonly startedAtS: number;

  /** `now` is injectable for tests (epoch ms). */
  constructor(
    readonly windowS = RATE_WINDOW_S,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(windowS) || windowS < 1) throw new RangeError(`windowS must be a positive integer, got ${windowS}`);
    this.slots = Array.from({ length: windowS }, () => ({ second: -1, perTool: new Map() }));
    this.startedAtS = Math.floor(this.now() / 1000);
  }

  record(tool: string, outcome: CallOutcome, seconds: number): void {
    const second = Math.floor(this.now() / 1000);
    const slot = this.slots[second % this.windowS]!;
    if (slot.second !== second) {
      slot.second = second;
      slot.perTool.clear();
    }
    let counts = slot.perTool.get(tool);
    if (!counts) slot.perTool.set(tool, (counts = empty()));
    counts.calls += 1;
    counts.totalSeconds += seconds;
    if (outcome === 'tool_error') counts.toolErrors += 1;
    else if (!NOT_MESH_ERRORS.has(outcome)) counts.errors += 1;
  }

  /**
   * Rates per tool and for all tools. The divisor is the window, or the time since this window started
   * when that is shorter, so the first minute after a start does not read low.
   */
  rates(): { windowS: number; total: WindowRates; perTool: Map<string, WindowRates> } {
    const nowS = Math.floor(this.now() / 1000);
    // Seconds elapsed, counting the current (partial) second as a whole one.
    const windowS = Math.max(1, Math.min(this.windowS, nowS - this.startedAtS + 1));
    const perTool = new Map<string, WindowCounts>();
    const total = empty();
    for (const slot of this.slots) {
      if (slot.second < 0 || slot.second <= nowS - this.windowS || slot.second > nowS) continue;
      for (const [tool, c] of slot.perTool) {
        let sum = perTool.get(tool);
        if (!sum) perTool.set(tool, (sum = empty()));
        for (const target of [sum, total]) {
          target.calls += c.calls;
          target.errors += c.errors;
          target.toolErrors += c.toolErrors;
          target.totalSeconds += c.totalSeconds;
        }
      }
    }
    const rated = (c: WindowCounts): WindowRates => ({
      ...c,
      callRate: c.calls / windowS,
      errorRate: c.calls ? c.errors / c.calls : null,
      meanMs: c.calls ? (c.totalSeconds / c.calls) * 1000 : null,
    });
    return { windowS, total: rated(total), perTool: new Map([...perTool].map(([tool, c]) => [tool, rated(c)])) };
  }
}
