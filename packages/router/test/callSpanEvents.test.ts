import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createLogger, startTracing } from '@flotilla/telemetry';
import { context, trace } from '@opentelemetry/api';
import { CallActivityRecorder } from '../src/ops/calls/CallActivityRecorder.js';
import { CallRateWindow } from '../src/ops/calls/CallRateWindow.js';
import { CallScope, type CallFacts } from '../src/ops/calls/CallScope.js';
import { CallSpanEvents } from '../src/ops/calls/CallSpanEvents.js';
import { CompositeCallObserver } from '../src/ops/calls/CompositeCallObserver.js';
import { RecentFailures } from '../src/ops/calls/RecentFailures.js';

// This file turns the OpenTelemetry SDK on for its process (the test runner gives each file its own),
// with an exporter that keeps ended spans in memory.
interface ExportedSpan {
  name: string;
  events: Array<{ name: string; attributes?: Record<string, unknown> }>;
  spanContext(): { traceId: string };
}
type SpanExporterOption = NonNullable<NonNullable<Parameters<typeof startTracing>[1]>['exporter']>;
const exported: ExportedSpan[] = [];
const memoryExporter = {
  export(batch: ExportedSpan[], done: (result: { code: number }) => void): void {
    exported.push(...batch);
    done({ code: 0 });
  },
  shutdown: async (): Promise<void> => {},
} as unknown as SpanExporterOption;
const tracing = startTracing('router-test', { exporter: memoryExporter });
const logger = createLogger({ name: 'test', level: 'silent' });

after(async () => {
  await tracing.shutdown(2000);
});

describe('call observers under tracing', () => {
  it('put retry and failover events on the call span, naming the failed attempt, and note its trace id', async () => {
    const scope = new CallScope();
    const failures = new RecentFailures();
    const recorder = new CallActivityRecorder(scope, new CallRateWindow(), failures);
    const observer = new CompositeCallObserver([recorder, new CallSpanEvents(scope)], logger);
    const span = trace.getTracer('test').startSpan('tools/call slow_work');
    const facts: CallFacts = { tool: 'slow_work', attempts: [] };

    // As the forwarder does: the observer is called while the call's span is active, across awaits.
    await context.with(trace.setSpan(context.active(), span), () =>
      scope.run(facts, async () => {
        await new Promise((r) => setImmediate(r));
        observer.attempt('slow_work', 'n1', 'busy');
        observer.retry('slow_work', 'busy');
        await new Promise((r) => setImmediate(r));
        observer.attempt('slow_work', 'n2', 'node_lost');
        observer.failover('slow_work', 'node_lost');
        observer.attempt('slow_work', 'n3', 'error');
        observer.finished('slow_work', 'n3', 'error', 0.5);
      }),
    );
    span.end();
    facts.error = 'server error';
    recorder.settled(facts);
    await tracing.flush();

    const done = exported.find((s) => s.name === 'tools/call slow_work');
    assert.ok(done, 'span exported');
    assert.deepEqual(
      done.events.map((e) => [e.name, e.attributes]),
      [
        ['flotilla.retry', { 'flotilla.reason': 'busy', 'flotilla.node_id': 'n1', 'flotilla.attempt': 1 }],
        ['flotilla.failover', { 'flotilla.reason': 'node_lost', 'flotilla.node_id': 'n2', 'flotilla.attempt': 2 }],
      ],
    );
    const [failure] = failures.list();
    assert.equal(failure?.traceId, span.spanContext().traceId);
    assert.deepEqual(failure?.attempts.map((a) => a.nodeId), ['n1', 'n2', 'n3']);
  });

  it('add nothing when no span is active', () => {
    const events = new CallSpanEvents(new CallScope());
    assert.doesNotThrow(() => events.retry('t', 'busy'));
  });
});
