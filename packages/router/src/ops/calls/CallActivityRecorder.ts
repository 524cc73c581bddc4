import { UNKNOWN_TOOL, type AttemptResult, type CallObserver, type CallOutcome } from '../../forwarding/CallObserver.js';
import type { FailedCall } from '../dashboard/DashboardSnapshot.js';
import { activeTraceId } from './activeTraceId.js';
import type { CallRateWindow } from './CallRateWindow.js';
import type { CallFacts, CallScope } from './CallScope.js';
import type { RecentFailures } from './RecentFailures.js';

/**
 * The dashboard's view of calls, fed as a {@link CallObserver}: every answer goes into the rate window;
 * failed calls go into the recent failures with their call id, trace id, attempts and error.
 *
 * A forwarded call runs inside a {@link CallScope} (see `ScopedCallForwarder`): the observer callbacks
 * add what they learn to the call's facts, and the call is published once the forwarder has settled,
 * when its error message is known too. A call refused before it reached the forwarder (unknown tool,
 * invalid arguments) has no scope and is published at once.
 */
export class CallActivityRecorder implements CallObserver {
  constructor(
    private readonly scope: CallScope,
    private readonly rates: CallRateWindow,
    private readonly failures: RecentFailures,
    private readonly now: () => number = Date.now,
  ) {}

  attempt(tool: string, nodeId: string, result: AttemptResult): void {
    const facts = this.factsOf(tool);
    if (!facts) return;
    facts.attempts.push({ nodeId, result });
    // Attempts run inside the router's server span: its trace id is the call's.
    facts.traceId ??= activeTraceId();
  }

  retry(tool: string): void {
    this.noteTrace(tool);
  }

  failover(tool: string): void {
    this.noteTrace(tool);
  }

  finished(tool: string, nodeId: string | undefined, outcome: CallOutcome, seconds: number): void {
    this.rates.record(tool, outcome, seconds);
    const facts = this.factsOf(tool);
    if (facts) {
      facts.finished = { nodeId, outcome, seconds };
      return; // published by settled(), once the error message is known
    }
    if (outcome === 'ok') return;
    const at = this.now();
    this.failures.add({
      at,
      tool,
      nodeId: nodeId ?? null,
      outcome,
      error: outcome === 'invalid_request' ? (tool === UNKNOWN_TOOL ? 'unknown tool' : 'arguments do not match the tool input schema') : null,
      callId: null,
      traceId: null,
      attempts: [],
      durationMs: seconds * 1000,
    });
  }

  /** The forwarder has answered the call (or failed it): publishes it if it failed. */
  settled(facts: CallFacts): void {
    const finished = facts.finished;
    if (!finished || finished.outcome === 'ok') return;
    const failure: FailedCall = {
      at: this.now(),
      tool: facts.tool,
      nodeId: finished.nodeId ?? null,
      outcome: finished.outcome,
      error: facts.error ?? null,
      callId: facts.callId ?? null,
      traceId: facts.traceId ?? null,
      attempts: [...facts.attempts],
      durationMs: finished.seconds * 1000,
    };
    this.failures.add(failure);
  }

  private noteTrace(tool: string): void {
    const facts = this.factsOf(tool);
    if (facts) facts.traceId ??= activeTraceId();
  }

  /** The current call's facts, if the callback is about that call. */
  private factsOf(tool: string): CallFacts | undefined {
    const facts = this.scope.current();
    return facts?.tool === tool ? facts : undefined;
  }
}
