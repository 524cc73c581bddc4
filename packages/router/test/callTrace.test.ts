/**
 * The spans of a forwarded call (docs/observability.md), with the OpenTelemetry SDK on and an in-memory
 * exporter: the server span's and dispatch spans' attributes, and the events that tell retries, failovers,
 * hedges, breaker rejections, cancellations and passed deadlines.
 */
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import { FlotillaErrorCode, META_DEADLINE } from '@flotilla/protocol';
import { startTracing } from '@flotilla/telemetry';
import { CallCancelledError, ClientDisconnectedError, JsonRpcError, UpstreamFailure, type CallOutcome, type CallRecord } from '../src/index.js';
import { FakeReplica, answerAfter, busy, forwardCall, lostAfter } from './fixtures/FakeReplica.js';

// This file turns the OpenTelemetry SDK on for its process (the test runner gives each file its own).
interface ExportedSpan {
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes?: Record<string, unknown> }>;
  parentSpanContext?: { spanId: string };
  status: { code: number };
  spanContext(): { traceId: string; spanId: string };
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

after(async () => {
  await tracing.shutdown(2000);
});

beforeEach(() => {
  exported.length = 0;
});

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const clientMeta = (): Record<string, unknown> => ({ traceparent: `00-${CLIENT_TRACE}-00f067aa0ba902b7-01` });

/** The exported spans of the one call this test made: its server span, then its dispatch spans in order. */
async function spansOfCall(): Promise<{ server: ExportedSpan; dispatches: ExportedSpan[] }> {
  await tracing.flush();
  const server = exported.find((s) => s.name === 'tools/call slow_work');
  assert.ok(server, `server span exported (got ${exported.map((s) => s.name).join(', ')})`);
  const dispatches = exported
    .filter((s) => s.name === 'dispatch slow_work')
    .sort((a, b) => (a.attributes['flotilla.attempt'] as number) - (b.attributes['flotilla.attempt'] as number));
  for (const d of dispatches) assert.equal(d.parentSpanContext?.spanId, server.spanContext().spanId, 'dispatch spans are children of the server span');
  return { server, dispatches };
}

const eventsOf = (span: ExportedSpan): Array<[string, Record<string, unknown> | undefined]> => span.events.map((e) => [e.name, e.attributes]);

describe('call spans', () => {
  it('continue the client trace and describe the call, each attempt and why its node was chosen', async () => {
    const skipped = new FakeReplica('n0', answerAfter(0, 'n0'));
    skipped.unavailable = 'breaker_open';
    const a = new FakeReplica('n1', answerAfter(0, 'from n1'));
    a.address = { host: '10.0.0.7', port: 7100 };
    a.queueWaitMs = 12.345;
    let record: CallRecord | undefined;
    await forwardCall([skipped, a], {
      meta: clientMeta(),
      observer: { attempt() {}, retry() {}, failover() {}, finished: (_t, _n, _o, _s, r) => void (record = r) },
    });
    const { server, dispatches } = await spansOfCall();
    assert.equal(server.spanContext().traceId, CLIENT_TRACE);
    assert.equal(record?.traceId, CLIENT_TRACE, 'the dashboard gets the trace id');
    assert.equal(server.kind, 1 /* SERVER */);
    assert.deepEqual(
      { ...server.attributes, 'flotilla.call_id': typeof server.attributes['flotilla.call_id'] },
      {
        'mcp.method.name': 'tools/call',
        'mcp.tool.name': 'slow_work',
        'gen_ai.tool.name': 'slow_work',
        'mcp.server': 'slow',
        'mcp.session.id': 'session-1',
        'jsonrpc.request.id': '7',
        'flotilla.call_id': 'string',
        'flotilla.tool': 'slow/work',
        'flotilla.node_id': 'n1',
        'flotilla.outcome': 'ok',
        'flotilla.attempts': 1,
      },
    );
    assert.equal(server.attributes['flotilla.call_id'], record?.callId);
    assert.equal(server.status.code, 0, 'an answered call leaves the status unset');
    assert.deepEqual(eventsOf(server), [['flotilla.breaker.rejected', { 'flotilla.node_id': 'n0', 'flotilla.breaker': 'node' }]]);
    assert.equal(dispatches.length, 1);
    assert.equal(dispatches[0]!.kind, 2 /* CLIENT */);
    assert.deepEqual(dispatches[0]!.attributes, {
      'flotilla.node_id': 'n1',
      'flotilla.attempt': 1,
      'flotilla.call_id': record?.callId,
      'mcp.server': 'slow',
      'flotilla.balancer.strategy': 'in-order',
      'flotilla.balancer.reason': 'first listed',
      'flotilla.balancer.excluded': 'n0: breaker_open',
      'server.address': '10.0.0.7',
      'server.port': 7100,
      'flotilla.queue_wait_ms': 12.35,
      'flotilla.result': 'ok',
    });
  });

  it('tell a retry after a refusal and a failover after a lost call, naming the failed attempt', async () => {
    const a = new FakeReplica('n1', busy('n1'));
    const b = new FakeReplica('n2', lostAfter('n2'));
    const c = new FakeReplica('n3', answerAfter(0, 'from n3'));
    await forwardCall([a, b, c], { retryAfterAcceptance: true });
    const { server, dispatches } = await spansOfCall();
    assert.deepEqual(eventsOf(server), [
      ['flotilla.retry', { 'flotilla.reason': 'busy', 'flotilla.node_id': 'n1', 'flotilla.attempt': 1, 'flotilla.error': 'busy: queue full' }],
      ['flotilla.failover', { 'flotilla.reason': 'node_lost', 'flotilla.node_id': 'n2', 'flotilla.attempt': 2, 'flotilla.error': 'connection to node n2 lost during the call' }],
    ]);
    assert.deepEqual(dispatches.map((d) => [d.attributes['flotilla.node_id'], d.attributes['flotilla.result'], d.attributes['error.type'] ?? null, d.status.code]), [
      ['n1', 'busy', 'busy', 2],
      ['n2', 'node_lost', 'node_lost', 2],
      ['n3', 'ok', null, 0],
    ]);
    assert.equal(server.attributes['flotilla.attempts'], 3);
    assert.equal(server.attributes['flotilla.node_id'], 'n3');
  });

  it('tell a breaker that refused an attempt', async () => {
    const a = new FakeReplica('n1', async () => {
      throw new UpstreamFailure('refused', 'n1', 'circuit breaker is open', false, FlotillaErrorCode.BreakerOpen);
    });
    const b = new FakeReplica('n2', answerAfter(0, 'from n2'));
    await forwardCall([a, b]);
    const { server } = await spansOfCall();
    assert.deepEqual(eventsOf(server), [
      ['flotilla.breaker.rejected', { 'flotilla.node_id': 'n1', 'flotilla.attempt': 1, 'flotilla.error': 'circuit breaker is open' }],
      ['flotilla.retry', { 'flotilla.reason': 'breaker_open', 'flotilla.node_id': 'n1', 'flotilla.attempt': 1, 'flotilla.error': 'circuit breaker is open' }],
    ]);
  });

  it('tell the breakers that left no node to try, and name no node as the one that answered', async () => {
    const a = new FakeReplica('n1', answerAfter(0, 'n1'));
    a.unavailable = 'breaker_open';
    const b = new FakeReplica('n2', answerAfter(0, 'n2'));
    b.unavailable = 'tool_breaker_open';
    const c = new FakeReplica('n3', answerAfter(0, 'n3'));
    c.unavailable = 'draining';
    await assert.rejects(forwardCall([a, b, c]), (e: JsonRpcError) => e.code === FlotillaErrorCode.NoReplica);
    const { server, dispatches } = await spansOfCall();
    assert.deepEqual(eventsOf(server), [
      ['flotilla.breaker.rejected', { 'flotilla.node_id': 'n1', 'flotilla.breaker': 'node' }],
      ['flotilla.breaker.rejected', { 'flotilla.node_id': 'n2', 'flotilla.breaker': 'tool' }],
    ]);
    assert.equal(dispatches.length, 0);
    assert.equal(server.attributes['flotilla.outcome'], 'no_replica');
    assert.equal(server.attributes['flotilla.attempts'], 0);
    assert.equal(server.attributes['flotilla.node_id'], undefined);
  });

  it('tell a breaker that refused the last attempt, with no retry after it', async () => {
    const a = new FakeReplica('n1', async () => {
      throw new UpstreamFailure('refused', 'n1', 'circuit breaker of slow/work is open', false, FlotillaErrorCode.BreakerOpen);
    });
    await assert.rejects(forwardCall([a]), (e: JsonRpcError) => e.code === FlotillaErrorCode.NoReplica);
    const { server } = await spansOfCall();
    assert.deepEqual(eventsOf(server), [['flotilla.breaker.rejected', { 'flotilla.node_id': 'n1', 'flotilla.attempt': 1, 'flotilla.error': 'circuit breaker of slow/work is open' }]]);
    assert.equal(server.attributes['flotilla.node_id'], undefined, 'no node answered');
  });

  it('name no node as the one that answered when the node that accepted the call failed it', async () => {
    await assert.rejects(forwardCall([new FakeReplica('n1', lostAfter('n1'))]), (e: JsonRpcError) => e.code === FlotillaErrorCode.NodeFailed);
    const { server, dispatches } = await spansOfCall();
    assert.equal(server.attributes['flotilla.node_id'], undefined);
    assert.equal(dispatches[0]!.attributes['flotilla.node_id'], 'n1');
  });

  it('tell a hedge: which node got the second copy, after how long', async () => {
    const slow = new FakeReplica('slow', answerAfter(10_000, 'slow'));
    slow.p95 = 20;
    const fast = new FakeReplica('fast', answerAfter(0, 'fast'));
    await forwardCall([slow, fast], { readOnly: true, policy: { hedgeReadOnly: true } });
    const { server, dispatches } = await spansOfCall();
    assert.deepEqual(eventsOf(server), [['flotilla.hedge', { 'flotilla.node_id': 'fast', 'flotilla.first_node_id': 'slow', 'flotilla.after_ms': 20 }]]);
    assert.deepEqual(dispatches.map((d) => [d.attributes['flotilla.node_id'], d.attributes['flotilla.hedge'] ?? false, d.attributes['flotilla.result']]), [
      ['slow', false, 'cancelled'],
      ['fast', true, 'ok'],
    ]);
  });

  for (const [how, abortReason, reason] of [
    ['cancelled', undefined, 'client'],
    ['dropped its connection', new ClientDisconnectedError(), 'client disconnected'],
  ] as const) {
    it(`tell that the client ${how}, on the node the call ran on, and end with outcome cancelled`, async () => {
      const a = new FakeReplica('n1', answerAfter(10_000, 'n1'));
      const controller = new AbortController();
      const call = forwardCall([a], { signal: controller.signal });
      while (a.calls.length === 0) await new Promise((r) => setTimeout(r, 2));
      controller.abort(abortReason);
      await assert.rejects(call, CallCancelledError);
      const { server } = await spansOfCall();
      assert.deepEqual(eventsOf(server), [['flotilla.call.cancelled', { 'flotilla.reason': reason, 'flotilla.node_id': 'n1' }]]);
      assert.equal(server.attributes['flotilla.outcome'], 'cancelled' satisfies CallOutcome);
      assert.equal(server.attributes['error.type'], 'cancelled');
    });
  }

  it('tell a deadline that passed while the call ran', async () => {
    // n1 refuses after the deadline: the router gives up instead of trying n2.
    const a = new FakeReplica('n1', async () => {
      await new Promise((r) => setTimeout(r, 300));
      throw new UpstreamFailure('refused', 'n1', 'busy: queue full', false, FlotillaErrorCode.NodeBusy);
    });
    const b = new FakeReplica('n2', answerAfter(0, 'n2'));
    const meta = { ...clientMeta(), [META_DEADLINE]: Date.now() + 100 };
    await assert.rejects(forwardCall([a, b], { meta }), (e: JsonRpcError) => e.code === FlotillaErrorCode.DeadlineExceeded);
    const { server } = await spansOfCall();
    assert.deepEqual(eventsOf(server), [['flotilla.call.deadline_exceeded', { 'flotilla.node_id': 'n1' }]]);
    assert.equal(server.attributes['flotilla.outcome'], 'deadline_exceeded');
    assert.equal(server.status.code, 2 /* ERROR */);
    assert.equal(b.calls.length, 0);
  });
});
