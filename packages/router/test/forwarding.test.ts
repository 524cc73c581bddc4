/**
 * The forwarder's failover and hedging rules, on fake replicas (deterministic, no network): what is
 * retried where, how attempts are bounded in number and time, and how a hedged read-only call races two
 * copies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { CallCancelledError, JsonRpcError, type AttemptResult, type CallObserver, type CallOutcome, type CallRecord } from '../src/index.js';
import { FakeReplica, answerAfter, busy, forwardCall as forward, lostAfter } from './fixtures/FakeReplica.js';

class RecordingObserver implements CallObserver {
  readonly events: string[] = [];
  attempt(_tool: string, nodeId: string, result: AttemptResult): void {
    this.events.push(`attempt ${nodeId} ${result}`);
  }
  retry(_tool: string, reason: AttemptResult): void {
    this.events.push(`retry ${reason}`);
  }
  failover(_tool: string, reason: AttemptResult): void {
    this.events.push(`failover ${reason}`);
  }
  /** What `finished` said, last call. */
  last?: { nodeId: string | undefined; outcome: CallOutcome; record: CallRecord | undefined };
  finished(_tool: string, nodeId: string | undefined, outcome: CallOutcome, _seconds: number, record?: CallRecord): void {
    this.last = { nodeId, outcome, record };
  }
  hedged(_tool: string, nodeId: string): void {
    this.events.push(`hedge ${nodeId}`);
  }
}

const text = (r: unknown): string => (r as { content: Array<{ text: string }> }).content[0]!.text;

describe('CallForwarder failover', () => {
  it('retries any tool on another replica when the node never started it (busy)', async () => {
    const a = new FakeReplica('a', busy('a'));
    const b = new FakeReplica('b', answerAfter(0, 'from b'));
    const observer = new RecordingObserver();
    assert.equal(text(await forward([a, b], { observer })), 'from b');
    assert.deepEqual(observer.events, ['attempt a busy', 'retry busy', 'attempt b ok']);
  });

  it('asks each replica whether it can serve this tool (node and per-tool breakers) and skips those that cannot', async () => {
    const a = new FakeReplica('a', answerAfter(0, 'a'));
    a.unavailable = 'tool_breaker_open';
    const b = new FakeReplica('b', answerAfter(0, 'b'));
    assert.equal(text(await forward([a, b])), 'b');
    assert.deepEqual(a.servedTools, ['slow/work']);
    assert.equal(a.calls.length, 0);
  });

  it('tells its observer the call id, every attempt, the error and the client trace id of a failed call', async () => {
    const observer = new RecordingObserver();
    const a = new FakeReplica('a', busy('a'));
    const b = new FakeReplica('b', lostAfter('b'));
    const meta = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    await assert.rejects(forward([a, b], { observer, meta }), (e: JsonRpcError) => e.code === FlotillaErrorCode.NodeFailed);
    const finished = observer.last!;
    assert.equal(finished.outcome, 'error');
    assert.match(finished.record!.callId, /^[0-9a-f-]{36}$/);
    // No OpenTelemetry SDK in this file: the call's trace is the client's.
    assert.equal(finished.record!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.deepEqual(finished.record!.attempts, [{ nodeId: 'a', result: 'busy' }, { nodeId: 'b', result: 'node_lost' }]);
    assert.match(finished.record!.error!, /^Node b failed while running slow_work: connection to node b lost during the call/);
  });

  it('records the text of a tool error result as the call error', async () => {
    const observer = new RecordingObserver();
    const a = new FakeReplica('a', async () => ({ isError: true, content: [{ type: 'text', text: 'disk full' }] }));
    await forward([a], { observer });
    assert.equal(observer.last!.outcome, 'tool_error');
    assert.equal(observer.last!.record!.error, 'disk full');
    assert.equal(observer.last!.nodeId, 'a');
  });

  it('fails a non-idempotent call that a node accepted and lost with NodeFailed naming the node, without retrying', async () => {
    const a = new FakeReplica('a', lostAfter('a'));
    const b = new FakeReplica('b', answerAfter(0, 'from b'));
    await assert.rejects(forward([a, b]), (e: JsonRpcError) => {
      assert.equal(e.code, FlotillaErrorCode.NodeFailed);
      assert.match(e.message, /^Node a failed while running slow_work: connection to node a lost during the call; not retried because slow_work is not marked read-only or idempotent$/);
      assert.deepEqual((e.data as { nodeId: string }).nodeId, 'a');
      return true;
    });
    assert.equal(b.calls.length, 0);
  });

  it('runs an idempotent call again elsewhere after the node that accepted it failed', async () => {
    const observer = new RecordingObserver();
    const a = new FakeReplica('a', lostAfter('a'));
    const b = new FakeReplica('b', answerAfter(0, 'from b'));
    assert.equal(text(await forward([a, b], { retryAfterAcceptance: true, observer })), 'from b');
    assert.deepEqual(observer.events, ['attempt a node_lost', 'failover node_lost', 'attempt b ok']);
  });

  it('passes the server own error answer through without retrying', async () => {
    const a = new FakeReplica('a', async () => {
      throw new JsonRpcError(ErrorCode.InvalidParams, 'bad input');
    });
    const b = new FakeReplica('b', answerAfter(0, 'b'));
    await assert.rejects(forward([a, b], { retryAfterAcceptance: true }), (e: JsonRpcError) => e.code === ErrorCode.InvalidParams);
    assert.equal(b.calls.length, 0);
  });

  it('bounds the number of attempts', async () => {
    const replicas = ['a', 'b', 'c', 'd', 'e'].map((id) => new FakeReplica(id, busy(id)));
    await assert.rejects(forward(replicas, { policy: { maxAttempts: 3 } }), (e: JsonRpcError) => {
      assert.equal(e.code, FlotillaErrorCode.NoReplica);
      assert.match(e.message, /tried a \(busy: queue full\), b \(busy: queue full\), c \(busy: queue full\)$/);
      return true;
    });
    assert.deepEqual(replicas.map((r) => r.calls.length), [1, 1, 1, 0, 0]);
  });

  it('bounds the time spent failing over: no attempt starts after the retry window', async () => {
    const a = new FakeReplica('a', busy('a'));
    const b = new FakeReplica('b', lostAfter('b', 80));
    const c = new FakeReplica('c', answerAfter(0, 'c'));
    await assert.rejects(forward([a, b, c], { retryAfterAcceptance: true, policy: { retryWindowMs: 40 } }), (e: JsonRpcError) => e.code === FlotillaErrorCode.NoReplica);
    assert.equal(c.calls.length, 0);
  });
});

describe('CallForwarder hedging', () => {
  it('sends a second copy of a read-only call after the first replica p95, takes the first answer and cancels the other', async () => {
    const observer = new RecordingObserver();
    const slow = new FakeReplica('slow', answerAfter(10_000, 'slow'));
    slow.p95 = 30;
    const fast = new FakeReplica('fast', answerAfter(5, 'fast'));
    const started = Date.now();
    assert.equal(text(await forward([slow, fast], { readOnly: true, policy: { hedgeReadOnly: true }, observer })), 'fast');
    assert.ok(Date.now() - started >= 30);
    assert.equal(slow.calls[0]!.signal.aborted, true, 'the losing copy is cancelled');
    assert.deepEqual(observer.events, ['hedge fast', 'attempt fast ok', 'attempt slow cancelled'], 'the losing copy is recorded before the call ends');
    assert.deepEqual(observer.last?.record?.attempts, [{ nodeId: 'fast', result: 'ok' }, { nodeId: 'slow', result: 'cancelled' }]);
  });

  it('keeps the first copy when it answers before its p95', async () => {
    const first = new FakeReplica('first', answerAfter(5, 'first'));
    first.p95 = 1000;
    const second = new FakeReplica('second', answerAfter(0, 'second'));
    assert.equal(text(await forward([first, second], { readOnly: true, policy: { hedgeReadOnly: true } })), 'first');
    assert.equal(second.calls.length, 0);
  });

  it('waits for the first copy when the hedge fails', async () => {
    const first = new FakeReplica('first', answerAfter(60, 'first'));
    first.p95 = 10;
    const second = new FakeReplica('second', lostAfter('second'));
    assert.equal(text(await forward([first, second], { readOnly: true, retryAfterAcceptance: true, policy: { hedgeReadOnly: true } })), 'first');
    assert.equal(first.calls[0]!.signal.aborted, false);
  });

  it('does not hedge when off (the default), for tools that are not read-only, or before the p95 is known', async () => {
    for (const setup of [
      { readOnly: true, policy: {}, p95: 10 },
      { readOnly: false, policy: { hedgeReadOnly: true }, p95: 10 },
      { readOnly: true, policy: { hedgeReadOnly: true }, p95: undefined },
    ]) {
      const first = new FakeReplica('first', answerAfter(40, 'first'));
      first.p95 = setup.p95;
      const second = new FakeReplica('second', answerAfter(0, 'second'));
      assert.equal(text(await forward([first, second], { readOnly: setup.readOnly, retryAfterAcceptance: true, policy: setup.policy })), 'first');
      assert.equal(second.calls.length, 0, JSON.stringify(setup));
    }
  });

  it('cancels both copies when the client cancels', async () => {
    const first = new FakeReplica('first', answerAfter(10_000, 'first'));
    first.p95 = 5;
    const second = new FakeReplica('second', answerAfter(10_000, 'second'));
    const controller = new AbortController();
    const call = forward([first, second], { readOnly: true, policy: { hedgeReadOnly: true }, signal: controller.signal });
    while (second.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await assert.rejects(call, CallCancelledError);
    assert.equal(first.calls[0]!.signal.aborted, true);
    assert.equal(second.calls[0]!.signal.aborted, true);
  });
});
