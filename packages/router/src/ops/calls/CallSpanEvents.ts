import { trace } from '@opentelemetry/api';
import type { AttemptResult, CallObserver } from '../../forwarding/CallObserver.js';
import type { CallScope } from './CallScope.js';

/**
 * Adds the `flotilla.retry` and `flotilla.failover` events (docs/observability.md) to the router's server
 * span of a call when the forwarder tries another replica. The forwarder calls its observer while the
 * call's server span is active, so the event lands on the right span; the failed node comes from the
 * attempts recorded in the call's {@link CallScope}. Without tracing there is no active span and this does
 * nothing.
 */
export class CallSpanEvents implements CallObserver {
  constructor(private readonly scope: CallScope) {}

  attempt(): void {}

  finished(): void {}

  retry(tool: string, reason: AttemptResult): void {
    this.event('flotilla.retry', tool, reason);
  }

  failover(tool: string, reason: AttemptResult): void {
    this.event('flotilla.failover', tool, reason);
  }

  private event(name: string, tool: string, reason: AttemptResult): void {
    const span = trace.getActiveSpan();
    if (!span?.isRecording()) return;
    const facts = this.scope.current();
    const attempts = facts?.tool === tool ? facts.attempts : [];
    const failed = attempts.at(-1);
    span.addEvent(name, {
      'flotilla.reason': reason,
      ...(failed ? { 'flotilla.node_id': failed.nodeId, 'flotilla.attempt': attempts.length } : {}),
    });
  }
}
