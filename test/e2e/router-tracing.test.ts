/**
 * One trace per client call across processes: the router continues the client's `traceparent` with a
 * server span, makes one dispatch span per attempt, and the agent's span is the dispatch span's child;
 * the router's log line for the call carries the same trace.
 * Real `flotilla router` and `flotilla agent` processes, configured only by the standard OTEL_* variables.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { until } from '../../packages/router/test/fixtures/mcpClient.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { OtlpTraceReceiver } from '../harness/OtlpTraceReceiver.js';

/** OTLP SpanKind values. */
const SERVER = 2;
const CLIENT = 3;

let nats: NatsServerProcess;
let receiver: OtlpTraceReceiver;
const procs: FlotillaProcess[] = [];

const otel = (): NodeJS.ProcessEnv => receiver.exportEnv();

before(async () => {
  nats = await NatsServerProcess.start();
  receiver = await OtlpTraceReceiver.start();
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await receiver?.stop();
  await nats?.dispose();
});

test('a call through the router is one trace: client span → router server span → dispatch span → agent span', async () => {
  const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0'], { ...otel(), LOG_LEVEL: 'debug' });
  procs.push(router);
  const routerUrl = String((await router.ready()).url);
  const agent = FlotillaProcess.spawn('t1', ['agent', '--node-id', 't1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--grpc-port', '0'], otel());
  procs.push(agent);
  await agent.ready(60_000);

  const client = new Client({ name: 'router-tracing-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(routerUrl));
  await client.connect(transport);
  const traceId = '5b8efff798038103d269b633813fc60c';
  const clientSpanId = 'eee19b7ec3c1b174';
  try {
    await until('echo_echo in the catalog', async () => (await client.listTools()).tools.some((t) => t.name === 'echo_echo'), 60_000);
    const result = await client.callTool({ name: 'echo_echo', arguments: { text: 'traced' }, _meta: { traceparent: `00-${traceId}-${clientSpanId}-01` } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'traced' }]);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }

  const spans = await until('router and agent spans', () => {
    const all = receiver.trace(traceId);
    const server = all.find((s) => s.name === 'tools/call echo_echo');
    const dispatch = all.find((s) => s.name === 'dispatch echo_echo');
    const agentSpan = all.find((s) => s.name === 'tools/call echo');
    return server && dispatch && agentSpan ? { server, dispatch, agentSpan } : undefined;
  });
  assert.equal(spans.server.parentSpanId, clientSpanId);
  assert.equal(spans.server.kind, SERVER);
  assert.equal(spans.server.resource['service.name'], 'flotilla-router');
  assert.equal(spans.server.attributes['mcp.tool.name'], 'echo_echo');
  assert.equal(spans.server.attributes['flotilla.outcome'], 'ok');
  assert.equal(spans.server.attributes['flotilla.node_id'], 't1');
  assert.equal(spans.dispatch.parentSpanId, spans.server.spanId);
  assert.equal(spans.dispatch.kind, CLIENT);
  assert.equal(spans.dispatch.attributes['flotilla.result'], 'ok');
  assert.equal(spans.agentSpan.parentSpanId, spans.dispatch.spanId);
  assert.equal(spans.agentSpan.attributes['flotilla.call_id'], spans.server.attributes['flotilla.call_id']);

  // The router's log line for the call carries its call id and its trace.
  const line = await router.waitFor((l) => l.msg === 'call finished' && l.target === 'echo_echo');
  assert.equal(line.callId, spans.server.attributes['flotilla.call_id']);
  assert.equal(line.trace_id, traceId);
  assert.equal(line.span_id, spans.server.spanId);
  assert.equal(line.outcome, 'ok');
});
