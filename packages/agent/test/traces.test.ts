/**
 * Traces: a tool call continues the caller's trace from `params._meta.traceparent`, the agent opens a
 * `tools/call <tool>` span around it, and the agent's log lines during the call carry its trace id.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { META_CALL_ID } from '@flotilla/protocol';
import { startTracing, type Tracing } from '@flotilla/telemetry';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';

let nats: NatsServerProcess;
let tracing: Tracing;
const exporter = new InMemorySpanExporter();
let t: TestAgent;

before(async () => {
  tracing = startTracing('agent-test', { exporter });
  nats = await NatsServerProcess.start();
  t = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }] });
});

after(async () => {
  await t?.agent.stop();
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
    assert.equal(span.attributes['flotilla.server'], 'echo');
    assert.equal(span.attributes['flotilla.outcome'], 'completed');
    const started = await t.logs.waitFor((l) => l.msg === 'call started' && l.callId === 'traced-call');
    assert.equal(started.trace_id, TRACE_ID);
  } finally {
    await closeClient(client);
  }
});
