/**
 * One connected trace across processes for a call that failed over once: real `flotilla router` and two
 * `flotilla agent` processes export to a local OTLP receiver; the node running a call is killed with
 * SIGKILL in the middle, the router places the call again on the other node, and the trace shows
 * router server span → dispatch attempt 1 (lost node) and dispatch attempt 2 (the other node) → the
 * agent span under attempt 2, with the failover event on the server span. Router and agent log lines of
 * the call carry its trace id, including the killed agent's lines written before it died.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { connectClient, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { eventually } from '../harness/eventually.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { OtlpTraceReceiver, type ReceivedSpan } from '../harness/OtlpTraceReceiver.js';

/** OTLP SpanKind and status codes. */
const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;

let nats: NatsServerProcess;
let receiver: OtlpTraceReceiver;
let router: FlotillaProcess;
let routerUrl: string;
const agents = new Map<string, FlotillaProcess>();
/** Port of each agent's MCP endpoint, from its ready line. */
const agentPorts = new Map<string, number>();
let client: TestClient | undefined;

const otel = (): NodeJS.ProcessEnv => ({
  ...receiver.exportEnv(),
  LOG_LEVEL: 'debug',
});

before(async () => {
  nats = await NatsServerProcess.start();
  receiver = await OtlpTraceReceiver.start();
  router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0'], otel());
  routerUrl = String((await router.ready()).url);
  for (const nodeId of ['o1', 'o2']) {
    agents.set(nodeId, FlotillaProcess.spawn(nodeId, ['agent', '--node-id', nodeId, '--server', 'slow=@flotilla/examples/slow', '--nats', nats.url, '--port', '0', '--grpc-port', '0'], otel()));
  }
  for (const [nodeId, agent] of agents) agentPorts.set(nodeId, Number(new URL(String((await agent.ready(60_000)).url)).port));
  await eventually(async () => {
    const tools = (await (await fetch(routerUrl.replace(/\/mcp$/, '/api/v1/tools'))).json()) as { tools: { name: string; replicas: unknown[] }[] };
    assert.equal(tools.tools.find((t) => t.name === 'slow_work')?.replicas.length, 2);
  }, 60_000);
  client = await connectClient(routerUrl, 'observability-test');
});

after(async () => {
  await client?.close().catch(() => {});
  await Promise.all([router, ...agents.values()].filter(Boolean).map((p) => p.stop()));
  await receiver?.stop();
  await nats?.dispose();
});

it('a call that failed over once is one connected trace across router and agents, and its log lines carry the trace id', async () => {
  let killed: string | undefined;
  let killing: Promise<void> | undefined;
  const result = await client!.client.callTool({ name: 'slow_work', arguments: { steps: 30, stepMs: 40 } }, undefined, {
    timeout: 120_000,
    onprogress: () => {
      // The call runs on one node now: kill that node, once.
      killing ??= (async () => {
        const view = (await (await fetch(routerUrl.replace(/\/mcp$/, '/api/v1/nodes'))).json()) as { nodes: { nodeId: string; outstanding: number }[] };
        killed = view.nodes.find((n) => n.outstanding > 0)?.nodeId;
        assert.ok(killed, 'a node runs the call');
        agents.get(killed)!.signal('SIGKILL');
      })();
    },
  });
  await killing;
  assert.deepEqual(result.content, [{ type: 'text', text: 'done: 30 steps of 40 ms' }]);
  const survivor = killed === 'o1' ? 'o2' : 'o1';

  // The spans: the router's server span of the call, its two dispatch spans, and the survivor's span.
  const spans = await eventually(() => {
    const server = receiver.spans.find((s) => s.name === 'tools/call slow_work' && s.kind === SERVER && s.resource['service.name'] === 'flotilla-router');
    assert.ok(server, 'router server span exported');
    const trace = receiver.trace(server.traceId);
    const dispatches = trace.filter((s) => s.name === 'dispatch slow_work').sort((a, b) => Number(a.attributes['flotilla.attempt']) - Number(b.attributes['flotilla.attempt']));
    assert.equal(dispatches.length, 2, 'two dispatch spans');
    const agentSpan = trace.find((s) => s.name === 'tools/call work' && s.resource['service.name'] === 'flotilla-agent');
    assert.ok(agentSpan, 'agent span exported');
    return { server, trace, first: dispatches[0]!, second: dispatches[1]!, agentSpan };
  }, 20_000);
  const { server, trace, first, second, agentSpan } = spans;
  const traceId = server.traceId;

  // Router server span: the root (the client sent no trace context), answered by the survivor.
  assert.equal(server.parentSpanId, '');
  assert.equal(server.attributes['mcp.tool.name'], 'slow_work');
  assert.equal(server.attributes['flotilla.outcome'], 'ok');
  assert.equal(server.attributes['flotilla.node_id'], survivor);
  const callId = server.attributes['flotilla.call_id'];
  assert.equal(typeof callId, 'string');
  assert.equal(server.attributes['flotilla.attempts'], 2);
  assert.equal(server.attributes['mcp.session.id'], client!.transport.sessionId);
  assert.equal(typeof server.attributes['jsonrpc.request.id'], 'string');
  const failover = server.events.filter((e) => e.name === 'flotilla.failover');
  assert.deepEqual(
    failover.map(({ attributes: { 'flotilla.error': error, ...rest } }) => [rest, typeof error]),
    [[{ 'flotilla.reason': 'node_lost', 'flotilla.node_id': killed!, 'flotilla.attempt': 1 }, 'string']],
  );
  assert.equal(server.events.filter((e) => e.name === 'flotilla.retry').length, 0, 'a loss after acceptance is a failover, not a retry');

  // Dispatch spans: attempt 1 on the killed node (lost), attempt 2 on the survivor (ok), both children of the server span.
  for (const d of [first, second]) {
    assert.equal(d.kind, CLIENT);
    assert.equal(d.parentSpanId, server.spanId);
    assert.equal(d.attributes['flotilla.call_id'], callId);
  }
  assert.equal(first.attributes['flotilla.attempt'], 1);
  assert.equal(first.attributes['flotilla.node_id'], killed);
  assert.equal(first.attributes['flotilla.result'], 'node_lost');
  assert.equal(first.statusCode, STATUS_ERROR);
  assert.equal(second.attributes['flotilla.attempt'], 2);
  assert.equal(second.attributes['flotilla.node_id'], survivor);
  assert.equal(second.attributes['flotilla.result'], 'ok');
  // Why each node: the strategy and its reason, and where the node is.
  for (const [d, nodeId] of [[first, killed!], [second, survivor]] as const) {
    assert.equal(d.attributes['flotilla.balancer.strategy'], 'progress-aware');
    assert.equal(typeof d.attributes['flotilla.balancer.reason'], 'string');
    assert.equal(d.attributes['mcp.server'], 'slow');
    assert.equal(d.attributes['server.address'], '127.0.0.1');
    assert.equal(d.attributes['server.port'], agentPorts.get(nodeId));
    assert.equal(typeof d.attributes['flotilla.queue_wait_ms'], 'number');
  }
  // The second attempt chose among one node: the first was tried already.
  assert.equal(second.attributes['flotilla.balancer.reason'], 'only candidate');

  // The survivor's span is the child of attempt 2, in the same trace, about the same call.
  assert.equal(agentSpan.kind, SERVER);
  assert.equal(agentSpan.parentSpanId, second.spanId);
  assert.equal(agentSpan.attributes['flotilla.node_id'], survivor);
  assert.equal(agentSpan.attributes['flotilla.call_id'], callId);
  assert.equal(agentSpan.attributes['flotilla.outcome'], 'ok');

  // Connected: every span but the root has its parent in the trace (the killed agent's span never left it).
  const ids = new Set(trace.map((s: ReceivedSpan) => s.spanId));
  for (const s of trace) if (s !== server) assert.ok(ids.has(s.parentSpanId), `${s.name} (${String(s.resource['service.name'])}) has its parent in the trace`);
  assert.deepEqual(receiver.errors, []);

  // Logs: the router's lines about the call, and both agents' lines, carry the trace id.
  const routerLost = await router.waitFor((l) => l.msg === 'call failed on a node; trying another replica' && l.callId === callId);
  assert.equal(routerLost.trace_id, traceId);
  assert.equal(routerLost.nodeId, killed);
  const routerDone = await router.waitFor((l) => l.msg === 'call finished' && l.callId === callId);
  assert.equal(routerDone.trace_id, traceId);
  assert.equal(routerDone.outcome, 'ok');
  const survivorDone = await agents.get(survivor)!.waitFor((l) => l.msg === 'call finished' && l.callId === callId);
  assert.equal(survivorDone.trace_id, traceId);
  assert.equal(survivorDone.span_id, agentSpan.spanId);
  const killedStarted = agents.get(killed!)!.lines.find((l) => l.msg === 'call started' && l.callId === callId);
  assert.ok(killedStarted, 'the killed agent logged the call before it died');
  assert.equal(killedStarted.trace_id, traceId);
});
