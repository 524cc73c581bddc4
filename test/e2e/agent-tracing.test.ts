/**
 * Tracing wired through the CLI, as a real agent process configured only by the standard OTEL_*
 * variables: it exports its call span over OTLP/HTTP (JSON) to a collector (here a tiny receiver in the
 * test), in the caller's trace from `_meta.traceparent`, its log lines for the call carry the same trace
 * and span ids, and SIGTERM exports the spans still buffered before the process exits.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { OtlpTraceReceiver, type ReceivedSpan } from '../harness/OtlpTraceReceiver.js';
import { eventually } from '../harness/eventually.js';

/** `META_CALL_ID` of @flotilla/protocol (end-to-end tests speak the wire, not our packages). */
const META_CALL_ID = 'flotilla/callId';
/** OTLP SpanKind SERVER. */
const SERVER = 2;

let nats: NatsServerProcess;
let receiver: OtlpTraceReceiver;
const procs: FlotillaProcess[] = [];

/** Starts `flotilla agent` with tracing configured by OTEL_* only; resolves with it and its base URL. */
async function tracedAgent(nodeId: string, bspDelayMs: number): Promise<{ agent: FlotillaProcess; url: string }> {
  const agent = FlotillaProcess.spawn(
    nodeId,
    ['agent', '--node-id', nodeId, '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--grpc-port', '0'],
    {
      ...receiver.exportEnv(bspDelayMs),
      // `call started` / `call finished` are debug lines.
      LOG_LEVEL: 'debug',
    },
  );
  procs.push(agent);
  const ready = await agent.ready();
  return { agent, url: String(ready.url) };
}

/** Calls `echo` over MCP with the caller's trace context and a call id in `_meta`. */
async function tracedCall(url: string, traceparent: string, callId: string): Promise<void> {
  const client = new Client({ name: 'agent-tracing-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp/echo`)));
  try {
    const result = await client.callTool({ name: 'echo', arguments: { text: 'traced' }, _meta: { traceparent, [META_CALL_ID]: callId } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'traced' }]);
  } finally {
    await client.close();
  }
}

function callSpan(traceId: string): ReceivedSpan {
  const spans = receiver.trace(traceId).filter((s) => s.name === 'tools/call echo');
  assert.equal(spans.length, 1, `one exported agent span in trace ${traceId}`);
  return spans[0]!;
}

before(async () => {
  nats = await NatsServerProcess.start();
  receiver = await OtlpTraceReceiver.start();
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await receiver?.stop();
  await nats?.dispose();
});

test('the agent exports its call span in the caller\'s trace, and its log lines for the call carry the ids', async () => {
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const parentSpanId = 'b7ad6b7169203331';
  const callId = 'e2e-traced-call';
  const { agent, url } = await tracedAgent('trace-node-1', 100);
  await tracedCall(url, `00-${traceId}-${parentSpanId}-01`, callId);
  assert.ok(agent.lines.some((l) => l.msg === 'tracing enabled' && l.service === 'flotilla-agent'));

  const span = await eventually(() => callSpan(traceId), 20_000);
  assert.equal(span.parentSpanId, parentSpanId);
  assert.equal(span.kind, SERVER);
  assert.equal(span.resource['service.name'], 'flotilla-agent');
  assert.equal(span.attributes['mcp.method.name'], 'tools/call');
  assert.equal(span.attributes['mcp.tool.name'], 'echo');
  assert.equal(span.attributes['mcp.server'], 'echo');
  assert.equal(span.attributes['flotilla.node_id'], 'trace-node-1');
  assert.equal(span.attributes['flotilla.call_id'], callId);
  assert.equal(span.attributes['flotilla.outcome'], 'ok');
  assert.ok(span.events.some((e) => e.name === 'flotilla.call.started'));
  assert.deepEqual(receiver.errors, []);

  const lines = await eventually(() => {
    const found = agent.lines.filter((l) => l.callId === callId);
    assert.deepEqual(found.map((l) => l.msg), ['call started', 'call finished']);
    return found;
  });
  for (const line of lines) {
    assert.equal(line.trace_id, traceId, `${String(line.msg)} carries the trace id`);
    assert.equal(line.span_id, span.spanId, `${String(line.msg)} carries the agent span's id`);
  }
});

test('SIGTERM exports the spans still buffered before the agent exits', async () => {
  const traceId = '1bf7651916cd43dd8448eb211c80319d';
  const parentSpanId = 'c7ad6b7169203332';
  // A batch delay far beyond the test: only the shutdown on exit can export the span.
  const { agent, url } = await tracedAgent('trace-node-2', 600_000);
  await tracedCall(url, `00-${traceId}-${parentSpanId}-01`, 'e2e-flushed-on-exit');
  await agent.waitFor((l) => l.msg === 'call finished' && l.callId === 'e2e-flushed-on-exit');
  assert.deepEqual(receiver.trace(traceId), [], 'nothing exported before the batch delay or the exit');

  agent.signal('SIGTERM');
  const exit = await agent.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  const span = callSpan(traceId);
  assert.equal(span.parentSpanId, parentSpanId);
  assert.equal(span.attributes['flotilla.node_id'], 'trace-node-2');
});
