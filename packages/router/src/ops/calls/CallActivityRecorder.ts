import { UNKNOWN_TOOL, type AttemptResult, type CallObserver, type CallOutcome, type CallRecord } from '../../forwarding/CallObserver.js';
import type { CallRateWindow } from './CallRateWindow.js';
import type { RecentFailures } from './RecentFailures.js';

/**
 * The dashboard's view of calls, fed as a {@link CallObserver}: every answer goes into the rate window;
 * failed calls go into the recent failures with their call id, trace id, attempts and error, as the
 * forwarder's record of the call gives them. A call refused before it reached the forwarder (unknown tool,
 * invalid arguments) has no record; its error says why it was refused.
 */
export class CallActivityRecorder implements CallObserver {
  constructor(
    private readonly rates: CallRateWindow,
    private readonly failures: RecentFailures,
    private readonly now: () => number = Date.now,
  ) {}

  finished(tool: string, nodeId: string | undefined, outcome: CallOutcome, seconds: number, record?: CallRecord): void {
    this.rates.record(tool, outcome, seconds);
    if (outcome === 'ok') return;
    this.failures.add({
      at: this.now(),
      tool,
      nodeId: nodeId ?? null,
      outcome,
      error: record ? (record.error ?? null) : refusalReason(tool, outcome),
      callId: record?.callId ?? null,
      traceId: record?.traceId ?? null,
      attempts: record ? record.attempts.map((a): { nodeId: string; result: AttemptResult } => ({ nodeId: a.nodeId, result: a.result })) : [],
      durationMs: seconds * 1000,
    });
  }
}

/** Why a call that never reached the forwarder was refused. */
function refusalReason(tool: string, outcome: CallOutcome): string | null {
  if (outcome !== 'invalid_request') return null;
  return tool === UNKNOWN_TOOL ? 'unknown tool' : 'arguments do not match the tool input schema';
}
