import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { CallCancelledError, HttpStatusError, JsonRpcError, NodeGuard, NoResponseError, UpstreamFailure, classifyExchangeError, isNodeFault, isToolFault, type BreakerState } from '../src/index.js';
import { MalformedServerMessage } from '../src/upstream/ServerMessage.js';

const logger = createLogger({ name: 'test', level: 'silent' });

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('NodeGuard', () => {
  it('bounds concurrency and queues the rest', async () => {
    const guard = new NodeGuard('n1', { concurrency: 2 }, logger);
    const gates = [deferred(), deferred(), deferred()];
    const started: number[] = [];
    const signal = new AbortController().signal;
    const runs = gates.map((g, i) => guard.run(async () => { started.push(i); await g.promise; return i; }, signal));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1]);
    assert.equal(guard.running, 2);
    assert.equal(guard.queued, 1);
    gates[0]!.resolve();
    assert.equal(await runs[0], 0);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1, 2]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2]);
    guard.shutdown();
  });

  it('rejects a queued call at once when its signal aborts, and never runs it', async () => {
    const guard = new NodeGuard('n1', { concurrency: 1 }, logger);
    const gate = deferred();
    const never = new AbortController().signal;
    const first = guard.run(() => gate.promise, never);
    const cancel = new AbortController();
    let ran = false;
    const second = guard.run(async () => { ran = true; }, cancel.signal);
    cancel.abort(new CallCancelledError('test'));
    await assert.rejects(second, CallCancelledError);
    gate.resolve();
    await first;
    await new Promise((r) => setImmediate(r));
    assert.equal(ran, false);
    guard.shutdown();
  });

  it('opens the breaker on node faults only, then refuses calls as not accepted', async () => {
    const guard = new NodeGuard('n1', { concurrency: 4, volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 }, logger);
    const signal = new AbortController().signal;
    // Tool errors, cancellations and busy answers are not node faults.
    for (const err of [new JsonRpcError(-32602, 'bad'), new CallCancelledError('x'), new UpstreamFailure('refused', 'n1', 'busy', false, FlotillaErrorCode.NodeBusy)]) {
      for (let i = 0; i < 3; i++) await assert.rejects(guard.run(() => Promise.reject(err), signal));
    }
    assert.equal(guard.breakerState, 'closed');
    // Those count as answers (opossum records filtered errors as successes): 9 so far. Faults must now
    // exceed half of the window.
    for (let i = 0; i < 10; i++) {
      await assert.rejects(guard.run(() => Promise.reject(new UpstreamFailure('lost', 'n1', 'connection reset', true)), signal));
    }
    assert.equal(guard.breakerState, 'open');
    let ran = false;
    await assert.rejects(
      guard.run(async () => { ran = true; }, signal),
      (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused' && err.code === FlotillaErrorCode.BreakerOpen,
    );
    assert.equal(ran, false);
    guard.shutdown();
  });
});

// The router builds every NodeGuard with no breaker options (NodeEndpoint passes only its concurrency and
// listeners), so these defaults are the ones docs/balancing.md states: a breaker opens at more than 50 %
// failures over at least 5 calls, and half-opens 5 s after opening.
describe('NodeGuard breaker defaults', { concurrency: true }, () => {
  const signal = new AbortController().signal;
  const nodeFault = (): UpstreamFailure => new UpstreamFailure('lost', 'n1', 'connection reset', true);
  const toolFault = (): JsonRpcError => new JsonRpcError(ErrorCode.InternalError, 'internal error in the tool');
  const fail = (guard: NodeGuard, err: Error, tool?: string): Promise<void> => assert.rejects(guard.run(() => Promise.reject(err), signal, tool));

  for (const [which, fault, tool, state] of [
    ['node', nodeFault, undefined, (g: NodeGuard) => g.breakerState],
    ['tool', toolFault, 'srv/t', (g: NodeGuard) => g.toolBreakerState('srv/t')],
  ] as const) {
    it(`opens the ${which} breaker only once at least 5 calls were made`, async () => {
      const guard = new NodeGuard('n1', { concurrency: 4 }, logger);
      for (let i = 0; i < 4; i++) await fail(guard, fault(), tool);
      assert.equal(state(guard), 'closed', '4 failures of 4 calls: too few calls');
      await fail(guard, fault(), tool);
      assert.equal(state(guard), 'open', '5 failures of 5 calls');
      guard.shutdown();
    });

    it(`opens the ${which} breaker at more than 50 % failures, not at 50 %`, async () => {
      const guard = new NodeGuard('n1', { concurrency: 4 }, logger);
      for (let i = 0; i < 5; i++) assert.equal(await guard.run(async () => 'ok', signal, tool), 'ok');
      for (let i = 0; i < 5; i++) await fail(guard, fault(), tool);
      assert.equal(state(guard), 'closed', '5 failures of 10 calls is 50 %');
      await fail(guard, fault(), tool);
      assert.equal(state(guard), 'open', '6 failures of 11 calls');
      guard.shutdown();
    });
  }

  it('half-opens the node breaker 5 s after it opened, and a good trial call closes it', async () => {
    const changes: Array<{ to: BreakerState; at: number }> = [];
    const guard = new NodeGuard('n1', { concurrency: 4, onBreakerChange: (to) => changes.push({ to, at: performance.now() }) }, logger);
    for (let i = 0; i < 5; i++) await fail(guard, nodeFault());
    await assert.rejects(guard.run(async () => 'x', signal), (err: unknown) => err instanceof UpstreamFailure && err.code === FlotillaErrorCode.BreakerOpen);
    for (const giveUpAt = performance.now() + 30_000; guard.breakerState === 'open' && performance.now() < giveUpAt; ) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(changes.map((c) => c.to), ['open', 'half-open']);
    // The open change is heard after opossum armed its reset timer (a loaded machine delayed it by 30 ms
    // once), and libuv timers run on the loop's cached clock: the bounds tell 5 s from a 1 s or 30 s reset.
    const openMs = changes[1]!.at - changes[0]!.at;
    assert.ok(openMs >= 4_500 && openMs < 15_000, `half-open ${Math.round(openMs)} ms after opening`);
    assert.equal(await guard.run(async () => 'trial', signal), 'trial');
    assert.equal(guard.breakerState, 'closed');
    guard.shutdown();
  });
});

describe('NodeGuard per-tool breakers', () => {
  const signal = new AbortController().signal;
  const toolFault = (): JsonRpcError => new JsonRpcError(ErrorCode.InternalError, 'internal error in the tool');
  const options = { concurrency: 4, volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 };

  it('opens the breaker of one tool on a node, leaving the node and its other tools in rotation', async () => {
    const changes: Array<[string, BreakerState]> = [];
    const nodeChanges: BreakerState[] = [];
    const guard = new NodeGuard('n1', { ...options, onToolBreakerChange: (tool, to) => changes.push([tool, to]), onBreakerChange: (to) => nodeChanges.push(to) }, logger);
    for (let i = 0; i < 4; i++) await assert.rejects(guard.run(() => Promise.reject(toolFault()), signal, 'srv/broken'));
    assert.equal(guard.toolBreakerState('srv/broken'), 'open');
    assert.deepEqual(changes, [['srv/broken', 'open']]);
    assert.equal(guard.breakerState, 'closed');
    assert.deepEqual(nodeChanges, []);
    assert.equal(guard.toolBreakerState('srv/fine'), 'closed');
    assert.equal(await guard.run(async () => 'ok', signal, 'srv/fine'), 'ok');
    let ran = false;
    await assert.rejects(
      guard.run(async () => { ran = true; }, signal, 'srv/broken'),
      (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused' && err.code === FlotillaErrorCode.BreakerOpen && /srv\/broken/.test(err.reason),
    );
    assert.equal(ran, false);
    assert.deepEqual(guard.toolBreakerStates(), { 'srv/broken': 'open', 'srv/fine': 'closed' });
    guard.shutdown();
  });

  it('does not count tool error results, cancellations, invalid params or busy answers against a tool', async () => {
    const guard = new NodeGuard('n1', options, logger);
    const notFaults = [
      new CallCancelledError('client'),
      new JsonRpcError(ErrorCode.InvalidParams, 'bad arguments'),
      new JsonRpcError(FlotillaErrorCode.DeadlineExceeded, 'deadline'),
      new UpstreamFailure('refused', 'n1', 'busy', false, FlotillaErrorCode.NodeBusy),
    ];
    for (const err of notFaults) for (let i = 0; i < 3; i++) await assert.rejects(guard.run(() => Promise.reject(err), signal, 'srv/t'));
    // An `isError: true` result is a normal answer.
    for (let i = 0; i < 3; i++) await guard.run(async () => ({ isError: true, content: [] }), signal, 'srv/t');
    assert.equal(guard.toolBreakerState('srv/t'), 'closed');
    assert.equal(guard.breakerState, 'closed');
    guard.shutdown();
  });

  it('counts a lost connection against the node, not the tool', async () => {
    const reset = new UpstreamFailure('lost', 'n1', 'connection reset', true);
    assert.equal(isNodeFault(reset), true);
    assert.equal(isToolFault(reset), false);
  });

  it('refuses a call at once when the node breaker is open, without spending the tool breaker trial', async () => {
    const guard = new NodeGuard('n1', options, logger);
    guard.trip('test');
    await assert.rejects(guard.run(async () => 'x', signal, 'srv/t'), (err: unknown) => err instanceof UpstreamFailure && err.code === FlotillaErrorCode.BreakerOpen && err.reason === 'circuit breaker is open');
    assert.equal(guard.toolBreakerState('srv/t'), 'closed');
    guard.shutdown();
  });
});

describe('NodeGuard.trip', () => {
  it('opens the node breaker now, logs why, and lets a trial call through after the reset timeout', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const capture = createLogger({ name: 'test', level: 'info', destination });
    const changes: BreakerState[] = [];
    const guard = new NodeGuard('n1', { concurrency: 2, resetTimeoutMs: 50, onBreakerChange: (to) => changes.push(to) }, capture);
    guard.trip('stopped reporting');
    assert.equal(guard.breakerState, 'open');
    assert.ok(lines.some((l) => l.msg === 'circuit breaker opened' && l.reason === 'stopped reporting' && l.nodeId === 'n1'), JSON.stringify(lines));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(guard.breakerState, 'half-open');
    assert.equal(await guard.run(async () => 'trial', new AbortController().signal), 'trial');
    assert.equal(guard.breakerState, 'closed');
    assert.deepEqual(changes, ['open', 'half-open', 'closed']);
    guard.shutdown();
  });
});

describe('classifyExchangeError', () => {
  const socketError = (code: string): Error => Object.assign(new Error(`socket ${code}`), { code });

  it('treats an agent busy or draining answer at the HTTP level as not accepted, without counting it against the node', () => {
    const busy = classifyExchangeError(new HttpStatusError(503, { code: FlotillaErrorCode.NodeBusy, message: 'queue full' }), 'n1');
    assert.ok(busy instanceof UpstreamFailure);
    assert.equal(busy.kind, 'refused');
    assert.equal(busy.countsAgainstNode, false);
    assert.equal(busy.code, FlotillaErrorCode.NodeBusy);
  });

  it('treats refused connections and HTTP-level rejections as not accepted; a 404 means the session is gone', () => {
    const refused = classifyExchangeError(new NoResponseError(Object.assign(new Error('connect'), { cause: socketError('ECONNREFUSED') })), 'n1');
    assert.ok(refused instanceof UpstreamFailure && refused.kind === 'refused' && refused.countsAgainstNode);
    const gone = classifyExchangeError(new HttpStatusError(404, { code: -32001, message: 'Session not found' }), 'n1');
    assert.ok(gone instanceof UpstreamFailure && gone.kind === 'refused' && gone.sessionGone && !gone.countsAgainstNode);
  });

  it('keeps an HTML error page out of the reason: only the status reaches clients, and a 5xx counts against the node', () => {
    const bad = classifyExchangeError(new HttpStatusError(502, undefined), 'n1');
    assert.ok(bad instanceof UpstreamFailure && bad.kind === 'refused' && bad.countsAgainstNode);
    assert.equal(bad.reason, 'HTTP 502 Bad Gateway');
  });

  it('treats a connection that broke before any response as lost, and says so (the node may still have started the call)', () => {
    const cut = classifyExchangeError(new NoResponseError(Object.assign(new Error('other side closed'), { cause: socketError('UND_ERR_SOCKET') })), 'n1');
    assert.ok(cut instanceof UpstreamFailure && cut.kind === 'lost' && cut.beforeResponse && /UND_ERR_SOCKET/.test(cut.reason));
    const midStream = classifyExchangeError(socketError('ECONNRESET'), 'n1');
    assert.ok(midStream instanceof UpstreamFailure && midStream.kind === 'lost' && !midStream.beforeResponse && midStream.countsAgainstNode);
  });

  it('answers a malformed server message with an internal error naming the node', () => {
    const err = classifyExchangeError(new MalformedServerMessage('id: expected number'), 'n1');
    assert.ok(err instanceof JsonRpcError);
    assert.equal(err.code, ErrorCode.InternalError);
    assert.match(err.message, /node n1 sent an invalid answer/);
  });

  it('passes failures, server errors and cancellations through unchanged', () => {
    const failure = new UpstreamFailure('lost', 'n1', 'x', true);
    const rpc = new JsonRpcError(ErrorCode.InvalidParams, 'bad input', { field: 'x' });
    const cancelled = new CallCancelledError('client');
    assert.equal(classifyExchangeError(failure, 'n1'), failure);
    assert.equal(classifyExchangeError(rpc, 'n1'), rpc);
    assert.equal(classifyExchangeError(cancelled, 'n1'), cancelled);
  });
});
