import type { Logger } from '@flotilla/telemetry';
import type { BreakerState } from '../../endpoint/NodeGuard.js';
import type { AttemptResult, CallObserver, CallOutcome, CallRecord } from '../../forwarding/CallObserver.js';

/**
 * Hands every call event to several observers (metrics, the dashboard's recorder), in order. Observers run inside the call path, so one that throws is logged and skipped: watching a call
 * must never fail it.
 */
export class CompositeCallObserver implements CallObserver {
  private readonly observers: readonly CallObserver[];

  constructor(observers: readonly CallObserver[], private readonly logger: Logger) {
    this.observers = [...observers];
  }

  attempt(tool: string, nodeId: string, result: AttemptResult): void {
    this.each('attempt', (o) => o.attempt?.(tool, nodeId, result));
  }

  retry(tool: string, reason: AttemptResult): void {
    this.each('retry', (o) => o.retry?.(tool, reason));
  }

  failover(tool: string, reason: AttemptResult): void {
    this.each('failover', (o) => o.failover?.(tool, reason));
  }

  finished(tool: string, nodeId: string | undefined, outcome: CallOutcome, seconds: number, record?: CallRecord): void {
    this.each('finished', (o) => o.finished(tool, nodeId, outcome, seconds, record));
  }

  hedged(tool: string, nodeId: string): void {
    this.each('hedged', (o) => o.hedged?.(tool, nodeId));
  }

  toolBreakerTransition(nodeId: string, tool: string, to: BreakerState): void {
    this.each('toolBreakerTransition', (o) => o.toolBreakerTransition?.(nodeId, tool, to));
  }

  private each(event: string, notify: (observer: CallObserver) => void): void {
    for (const observer of this.observers) {
      try {
        notify(observer);
      } catch (err) {
        this.logger.error({ err, event, observer: observer.constructor.name }, 'call observer failed');
      }
    }
  }
}
