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
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { OtlpTraceReceiver } from '../harness/OtlpTraceReceiver.js';

/** OTLP SpanKind values. */
const SERVER = 2;
const CLIENT = 3;

let mesh: FlotillaMesh;
let receiver: OtlpTraceReceiver;

before(async () => {
  mesh = await FlotillaMesh.start();
  receiver = await OtlpTraceReceiver.start();
});

after(async () => {
  await mesh?.stop();
  await receiver?.stop();
});

test('a call through the router is one trace: client span → router server span → dispatch span → agent span', async () => {
  const routerUrl = await mesh.startRouter([], 'router', { ...receiver.exportEnv(), LOG_LEVEL: 'debug' });
  const router = mesh.router;
  await mesh.startAgent('t1', [], ['echo=@flotilla/examples/echo'], receiver.exportEnv());

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

test('a call a node refused as busy, placed on another node, shows the retry and the refusal on its trace', async () => {
  // Round-robin, so the next two calls go to different nodes whatever their load: one meets the full node.
  const routerUrl = await mesh.startRouter(['--strategy', 'round-robin'], 'router-rr', receiver.exportEnv());
  const slow = ['slow=@flotilla/examples/slow'];
  const [full] = await Promise.all([
    mesh.startAgent('full', ['--capacity', '1', '--max-queue', '1'], slow, receiver.exportEnv()),
    mesh.startAgent('free', [], slow, receiver.exportEnv()),
  ]);
  const fullUrl = String((await full.ready()).url);
  const api = <T>(path: string): Promise<T> => mesh.api<T>(path, routerUrl);
  await mesh.waitForReplicas('slow_work', ['full', 'free'], 60_000);

  // Fill `full` directly, bypassing the router: one call running, one waiting; a third is refused busy.
  const direct = new Client({ name: 'filler', version: '1.0.0' });
  const directTransport = new StreamableHTTPClientTransport(new URL(`${fullUrl}/mcp/slow`));
  await direct.connect(directTransport);
  const filler = new AbortController();
  const fills = [1, 2].map(() => direct.callTool({ name: 'work', arguments: { steps: 600, stepMs: 100 } }, undefined, { signal: filler.signal, timeout: 120_000 }).catch(() => undefined));
  await until('full runs one call and queues one', async () => {
    const node = (await api<{ nodes: { nodeId: string; load?: { inflight: number; queued: number } }[] }>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'full');
    return node?.load?.inflight === 1 && node.load.queued === 1;
  }, 30_000);

  const client = new Client({ name: 'router-tracing-busy', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(routerUrl));
  await client.connect(transport);
  const traceIds = ['6c8efff798038103d269b633813fc601', '6c8efff798038103d269b633813fc602'];
  try {
    for (const traceId of traceIds) {
      const result = await client.callTool({ name: 'slow_work', arguments: { steps: 1, stepMs: 1 }, _meta: { traceparent: `00-${traceId}-eee19b7ec3c1b174-01` } });
      assert.equal(result.isError, undefined, JSON.stringify(result));
    }
  } finally {
    filler.abort();
    await Promise.all(fills);
    await Promise.all([transport, directTransport].map((t) => t.terminateSession().catch(() => {})));
    await Promise.all([client.close(), direct.close()]);
  }

  // One of the two calls met `full` first: its trace has the refusal, the retry and the answer from `free`.
  const spans = await until('a trace with a busy refusal and a retry', () => {
    for (const traceId of traceIds) {
      const all = receiver.trace(traceId);
      const server = all.find((s) => s.name === 'tools/call slow_work' && s.kind === SERVER);
      const dispatches = all.filter((s) => s.name === 'dispatch slow_work').sort((a, b) => Number(a.attributes['flotilla.attempt']) - Number(b.attributes['flotilla.attempt']));
      const refusal = all.find((s) => s.name === 'tools/call work' && s.attributes['flotilla.node_id'] === 'full');
      const answer = all.find((s) => s.name === 'tools/call work' && s.attributes['flotilla.node_id'] === 'free');
      if (server?.events.some((e) => e.name === 'flotilla.retry') && dispatches.length === 2 && refusal && answer) return { server, dispatches, refusal, answer };
    }
    return undefined;
  }, 20_000);
  const retry = spans.server.events.filter((e) => e.name === 'flotilla.retry');
  assert.equal(retry.length, 1);
  assert.deepEqual({ ...retry[0]!.attributes, 'flotilla.error': undefined }, { 'flotilla.reason': 'busy', 'flotilla.node_id': 'full', 'flotilla.attempt': 1, 'flotilla.error': undefined });
  assert.match(String(retry[0]!.attributes['flotilla.error']), /busy/);
  assert.equal(spans.server.attributes['flotilla.outcome'], 'ok');
  assert.equal(spans.server.attributes['flotilla.node_id'], 'free');
  assert.equal(spans.server.attributes['flotilla.attempts'], 2);
  const [first, second] = spans.dispatches;
  assert.deepEqual([first!.attributes['flotilla.node_id'], first!.attributes['flotilla.result'], first!.attributes['flotilla.balancer.strategy']], ['full', 'busy', 'round-robin']);
  assert.deepEqual([second!.attributes['flotilla.node_id'], second!.attributes['flotilla.result']], ['free', 'ok']);
  // The full node's own span says it refused, under the attempt it refused.
  assert.equal(spans.refusal.parentSpanId, first!.spanId);
  const rejected = spans.refusal.events.find((e) => e.name === 'flotilla.call.rejected');
  assert.equal(rejected?.attributes['flotilla.reason'], 'busy');
  assert.equal(spans.answer.parentSpanId, second!.spanId);
});
