/**
 * Traces: a tool call continues the caller's trace from `params._meta.traceparent`, the agent opens a
 * `tools/call <tool>` span around it (from admission to answer), refusals, cancellations and deadlines are
 * events on it, the agent's log lines during the call carry its trace id, and a progress report about a
 * single call carries that call's trace context in its NATS headers.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FlotillaErrorCode, META_CALL_ID, META_DEADLINE, ProgressReportSchema, decodeJson, subjects } from '@flotilla/protocol';
import { startTracing, type Tracing } from '@flotilla/telemetry';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { eventually } from '../../../test/harness/eventually.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

const SLOW = fileURLToPath(new URL('../../examples/src/slow.ts', import.meta.url));
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';

let nats: NatsServerProcess;
let nc: NatsConnection;
let tracing: Tracing;
const exporter = new InMemorySpanExporter();
let t: TestAgent;
/** One slot, no queue: a second call while one runs is refused busy. */
let small: TestAgent;

/** A `traceparent` of a caller's span in a trace of its own, numbered so tests do not share traces. */
function traceparent(n: number): { traceId: string; spanId: string; header: string } {
  const traceId = n.toString(16).padStart(32, 'a');
  const spanId = n.toString(16).padStart(16, 'b');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

async function spanOf(traceId: string, name: string): Promise<ReadableSpan> {
  await tracing.flush();
  return eventually(() => {
    const span = exporter.getFinishedSpans().find((s) => s.spanContext().traceId === traceId && s.name === name);
    assert.ok(span, `span ${name} in trace ${traceId}`);
    return span;
  }, 20_000);
}

function callWork(client: Client, args: Record<string, unknown>, meta: Record<string, unknown>, options: { signal?: AbortSignal; onprogress?: () => void } = {}) {
  return client.callTool({ name: 'work', arguments: args, _meta: meta }, undefined, { ...options, timeout: 120_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

before(async () => {
  tracing = startTracing('agent-test', { exporter });
  nats = await NatsServerProcess.start();
  nc = await connect({ servers: nats.url });
  t = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }, { name: 'slow', module: SLOW }] });
  small = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'slow', module: SLOW }], capacity: 1, maxQueue: 0 });
});

after(async () => {
  await t?.agent.stop();
  await small?.agent.stop();
  await nc?.close();
  await tracing?.shutdown();
  await nats?.dispose();
});

test('a tool call is a span in the caller\'s trace, and logs during it carry the trace id', async () => {
  const client = await connectClient(t.agent, 'echo');
  try {
    await client.callTool({
      name: 'echo',
      arguments: { text: 'traced' },
      _meta: { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`, [META_CALL_ID]: 'traced-call' },
    });
    await tracing.flush();
    await waitUntil(() => exporter.getFinishedSpans().some((s) => s.name === 'tools/call echo'), 20_000, 'the call span');
    const span = exporter.getFinishedSpans().find((s) => s.name === 'tools/call echo')!;
    assert.equal(span.spanContext().traceId, TRACE_ID);
    assert.equal(span.parentSpanContext?.spanId, PARENT_SPAN_ID);
    assert.equal(span.attributes['flotilla.call_id'], 'traced-call');
    assert.equal(span.attributes['mcp.server'], 'echo');
    assert.equal(span.attributes['mcp.tool.name'], 'echo');
    assert.equal(span.attributes['flotilla.node_id'], t.agent.nodeId);
    assert.equal(typeof span.attributes['flotilla.queue_wait_ms'], 'number');
    assert.equal(span.attributes['flotilla.outcome'], 'ok');
    assert.deepEqual(span.events.map((e) => e.name), ['flotilla.call.started']);
    const started = await t.logs.waitFor((l) => l.msg === 'call started' && l.callId === 'traced-call');
    assert.equal(started.trace_id, TRACE_ID);
    const finished = await t.logs.waitFor((l) => l.msg === 'call finished' && l.callId === 'traced-call');
    assert.equal(finished.trace_id, TRACE_ID);
    assert.equal(finished.span_id, span.spanContext().spanId);
  } finally {
    await closeClient(client);
  }
});

test('a busy refusal, a cancellation and a deadline are events on the call\'s span', async () => {
  const client = await connectClient(small.agent, 'slow');
  try {
    const long = traceparent(1);
    const running = new AbortController();
    const first = callWork(client, { steps: 100_000, stepMs: 50 }, { traceparent: long.header, [META_CALL_ID]: 'trace-long' }, { signal: running.signal });
    await waitUntil(() => (small.agent.health().load as { inflight: number }).inflight === 1, 20_000, 'first call running');

    const refused = traceparent(2);
    const busy = await callWork(client, { steps: 1, stepMs: 1 }, { traceparent: refused.header, [META_CALL_ID]: 'trace-busy' });
    assert.ok(busy instanceof McpError && busy.code === FlotillaErrorCode.NodeBusy);
    const busySpan = await spanOf(refused.traceId, 'tools/call work');
    assert.equal(busySpan.parentSpanContext?.spanId, refused.spanId);
    assert.equal(busySpan.attributes['flotilla.outcome'], 'rejected_busy');
    assert.equal(busySpan.attributes['error.type'], 'rejected_busy');
    assert.deepEqual(busySpan.events.map((e) => [e.name, e.attributes?.['flotilla.reason']]), [['flotilla.call.rejected', 'busy']]);
    const refusal = await small.logs.waitFor((l) => l.msg === 'call refused' && l.callId === 'trace-busy');
    assert.equal(refusal.trace_id, refused.traceId);

    running.abort('test cancels');
    await first;
    const cancelled = await spanOf(long.traceId, 'tools/call work');
    assert.equal(cancelled.attributes['flotilla.outcome'], 'cancelled');
    const cancelEvent = cancelled.events.find((e) => e.name === 'flotilla.call.cancelled');
    assert.equal(cancelEvent?.attributes?.['flotilla.reason'], 'client');
    assert.equal(cancelEvent?.attributes?.['flotilla.started'], true);
    await waitUntil(() => (small.agent.health().load as { inflight: number }).inflight === 0, 20_000, 'slot freed');

    const expired = traceparent(3);
    const late = await callWork(client, { steps: 1, stepMs: 1 }, { traceparent: expired.header, [META_DEADLINE]: Date.now() - 1 });
    assert.ok(late instanceof McpError && late.code === FlotillaErrorCode.DeadlineExceeded);
    const lateSpan = await spanOf(expired.traceId, 'tools/call work');
    assert.equal(lateSpan.attributes['flotilla.outcome'], 'deadline_exceeded');
    assert.equal(typeof lateSpan.attributes['flotilla.deadline'], 'string');
    assert.deepEqual(lateSpan.events.map((e) => [e.name, e.attributes?.['flotilla.started']]), [['flotilla.call.deadline_exceeded', false]]);
  } finally {
    await closeClient(client);
  }
});

test('a progress report of a single call carries its trace context in NATS headers; load reports none', async () => {
  const subj = subjects('flotilla');
  const progress: Array<{ callIds: string[]; traceparent: string | undefined }> = [];
  const loads: Array<string | undefined> = [];
  const progressSub = nc.subscribe(subj.progress(t.agent.nodeId), {
    callback: (err, msg) => {
      if (err) return;
      const report = decodeJson(ProgressReportSchema, msg.data);
      if (report.ok) progress.push({ callIds: report.value.calls.map((c) => c.callId), traceparent: msg.headers?.get('traceparent') || undefined });
    },
  });
  const loadSub = nc.subscribe(subj.load(t.agent.nodeId), { callback: (err, msg) => { if (!err) loads.push(msg.headers?.get('traceparent') || undefined); } });
  const client = await connectClient(t.agent, 'slow');
  try {
    const caller = traceparent(4);
    await callWork(client, { steps: 3, stepMs: 30 }, { traceparent: caller.header, [META_CALL_ID]: 'trace-progress' }, { onprogress: () => {} });
    const span = await spanOf(caller.traceId, 'tools/call work');
    const report = await eventually(() => {
      const found = progress.find((p) => p.callIds.length === 1 && p.callIds[0] === 'trace-progress');
      assert.ok(found, 'a progress report of the call alone');
      return found;
    }, 20_000);
    assert.equal(report.traceparent, `00-${caller.traceId}-${span.spanContext().spanId}-01`);
    await eventually(() => assert.ok(loads.length > 0), 20_000);
    assert.deepEqual(loads.filter((h) => h !== undefined), []);
  } finally {
    progressSub.unsubscribe();
    loadSub.unsubscribe();
    await closeClient(client);
  }
});
