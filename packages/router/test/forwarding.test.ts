/**
 * The forwarder's failover and hedging rules, on fake replicas (deterministic, no network): what is
 * retried where, how attempts are bounded in number and time, and how a hedged read-only call races two
 * copies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { CallToolResultSchema, ErrorCode, type ClientRequest } from '@modelcontextprotocol/sdk/types.js';
import {
  CallCancelledError,
  CallDirectory,
  CallForwarder,
  JsonRpcError,
  UpstreamFailure,
  type AttemptResult,
  type Balancer,
  type CallObserver,
  type ClientCallContext,
  type ForwardTarget,
  type ForwardingPolicy,
  type ReplicaDirectory,
} from '../src/index.js';

const logger = createLogger({ name: 'test', level: 'silent' });

interface CallSeen {
  signal: AbortSignal;
  tool: string | undefined;
}

type Behaviour = (signal: AbortSignal) => Promise<unknown>;

/** A replica whose answers the test scripts. */
class FakeReplica implements ForwardTarget {
  readonly outstanding = 0;
  readonly capacity = 4;
  readonly calls: CallSeen[] = [];
  readonly servedTools: Array<string | undefined> = [];
  p95: number | undefined;
  constructor(readonly nodeId: string, private readonly behaviour: Behaviour) {}

  canServe(_server: string, tool?: string): boolean {
    this.servedTools.push(tool);
    return true;
  }

  call<S extends AnySchema>(_server: string, _request: ClientRequest, _schema: S, options: { signal: AbortSignal }): Promise<SchemaOutput<S>> {
    this.calls.push({ signal: options.signal, tool: undefined });
    return this.behaviour(options.signal) as Promise<SchemaOutput<S>>;
  }

  latencyP95Ms(): number | undefined {
    return this.p95;
  }
}

const ok = (text: string) => ({ content: [{ type: 'text', text }] });
const answerAfter = (ms: number, text: string): Behaviour => (signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(ok(text)), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new CallCancelledError('aborted'));
    }, { once: true });
  });
const busy = (nodeId: string): Behaviour => async () => {
  throw new UpstreamFailure('refused', nodeId, 'busy: queue full', false, FlotillaErrorCode.NodeBusy);
};
const lostAfter = (nodeId: string, ms = 0): Behaviour => async () => {
  await new Promise((r) => setTimeout(r, ms));
  throw new UpstreamFailure('lost', nodeId, `connection to node ${nodeId} lost during the call`, true);
};

/** Takes replicas in the listed order, so each test knows which node is tried when. */
const inOrder: Balancer = { name: 'in-order', pick: (candidates) => candidates[0] };

function directory(replicas: FakeReplica[], readOnly = false): ReplicaDirectory {
  return { endpoint: (id) => replicas.find((r) => r.nodeId === id), isReadOnlyTool: () => readOnly };
}

function client(signal: AbortSignal = new AbortController().signal): ClientCallContext {
  return {
    sessionId: 's',
    requestId: 1,
    signal,
    meta: undefined,
    progressToken: undefined,
    sendNotification: async () => {},
    sendRequest: async () => {
      throw new Error('not in this test');
    },
    clientCapabilities: () => undefined,
    logLevel: () => undefined,
  };
}

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
  finished(): void {}
  hedged(_tool: string, nodeId: string): void {
    this.events.push(`hedge ${nodeId}`);
  }
}

function forward(replicas: FakeReplica[], options: { policy?: ForwardingPolicy; retryAfterAcceptance?: boolean; readOnly?: boolean; signal?: AbortSignal; observer?: CallObserver } = {}) {
  const forwarder = new CallForwarder(directory(replicas, options.readOnly), inOrder, new CallDirectory(), 60_000, logger, options.observer, options.policy);
  return forwarder.forward({
    target: 'slow_work',
    server: 'slow',
    replicas: replicas.map((r) => r.nodeId),
    request: { method: 'tools/call', params: { name: 'work', arguments: {} } },
    resultSchema: CallToolResultSchema,
    retryAfterAcceptance: options.retryAfterAcceptance ?? false,
    client: client(options.signal),
  });
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

  it('asks each replica whether it can serve this tool (node and per-tool breakers)', async () => {
    const a = new FakeReplica('a', answerAfter(0, 'a'));
    await forward([a]);
    assert.deepEqual(a.servedTools, ['slow/work']);
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
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(observer.events, ['hedge fast', 'attempt fast ok', 'attempt slow cancelled']);
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
