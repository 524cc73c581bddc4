import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createLogger, extractTraceMeta, injectTraceMeta, startTracing } from '@flotilla/telemetry';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { chunks.push(chunk.toString()); cb(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('tracing: log lines carry the active trace id, trace context round-trips through _meta, arguments are redacted', async () => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing('telemetry-test', { exporter });
  try {
    assert.ok(tracing.enabled);
    const out = capture();
    const logger = createLogger({ name: 'test', destination: out.stream });
    const tracer = trace.getTracer('test');
    let traceId = '';
    const meta: Record<string, unknown> = {};
    await tracer.startActiveSpan('outer', async (span) => {
      traceId = span.spanContext().traceId;
      logger.info({ arguments: { secret: 'x' }, token: 't' }, 'inside a span');
      injectTraceMeta(meta);
      span.end();
    });
    logger.info('outside any span');
    const [inside, outside] = out.lines();
    assert.equal(inside?.trace_id, traceId);
    assert.equal(typeof inside?.span_id, 'string');
    assert.equal(inside?.arguments, '[redacted]');
    assert.equal(inside?.token, '[redacted]');
    assert.equal(outside?.trace_id, undefined);
    assert.match(String(meta.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    // The receiving side continues the same trace.
    const ctx = extractTraceMeta(meta);
    const child = tracer.startSpan('child', {}, ctx);
    assert.equal(child.spanContext().traceId, traceId);
    child.end();
    // Export may wait for async resource detection.
    await tracing.flush();
    assert.deepEqual(exporter.getFinishedSpans().map((s) => s.name).sort(), ['child', 'outer']);
  } finally {
    await tracing.shutdown();
    propagation.disable();
    context.disable();
    trace.disable();
  }
});

test('tracing stays off without OTEL_* configuration', () => {
  const saved = { ...process.env };
  delete process.env.OTEL_TRACES_EXPORTER;
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  try {
    assert.equal(startTracing('off').enabled, false);
  } finally {
    process.env = saved;
  }
});

test('shutdown with a timeout returns even when the exporter never answers', async () => {
  // An exporter stuck on an unreachable collector: nothing it is asked ever completes.
  const asked: string[] = [];
  const stuck: SpanExporter = {
    export: () => void asked.push('export'),
    shutdown: () => {
      asked.push('shutdown');
      return new Promise<void>(() => {});
    },
    forceFlush: () => {
      asked.push('forceFlush');
      return new Promise<void>(() => {});
    },
  };
  const tracing = startTracing('stuck-test', { exporter: stuck });
  let bound: NodeJS.Timeout | undefined;
  try {
    trace.getTracer('test').startSpan('pending').end();
    // Export may wait for async resource detection.
    for (const giveUpAt = Date.now() + 10_000; !asked.includes('export') && Date.now() < giveUpAt; ) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(asked, ['export'], 'the span went to the exporter, which never calls back');
    // The SDK's own shutdown waits on the exporter for ever; the 50 ms bound must end the wait. The
    // 20 s timer (which keeps the event loop alive) tells a return from a hang.
    const outcome = await Promise.race([
      tracing.shutdown(50).then(() => 'returned' as const),
      new Promise<'hung'>((resolve) => (bound = setTimeout(() => resolve('hung'), 20_000))),
    ]);
    assert.equal(outcome, 'returned');
    assert.ok(asked.includes('shutdown'), `the SDK asked the exporter to shut down, and is still waiting on it: ${asked.join(', ')}`);
  } finally {
    clearTimeout(bound);
    propagation.disable();
    context.disable();
    trace.disable();
  }
});
