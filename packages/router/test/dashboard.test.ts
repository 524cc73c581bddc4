import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { NodeRecordSchema, PROTOCOL_VERSION } from '@flotilla/protocol';
import type { RegisteredNode } from '@flotilla/registry';
import { createLogger } from '@flotilla/telemetry';
import type { CallObserver, CallOutcome } from '../src/index.js';
import { UNKNOWN_TOOL } from '../src/index.js';
import { traceIdOfMeta } from '../src/forwarding/CallTrace.js';
import { CallActivityRecorder } from '../src/ops/calls/CallActivityRecorder.js';
import { CallRateWindow } from '../src/ops/calls/CallRateWindow.js';
import { CompositeCallObserver } from '../src/ops/calls/CompositeCallObserver.js';
import { RecentFailures, FAILURE_ERROR_MAX_CHARS } from '../src/ops/calls/RecentFailures.js';
import { DASHBOARD_ASSETS_DIR, loadDashboardAssets } from '../src/ops/dashboard/DashboardAssets.js';
import { FailedCallSchema, type DashboardNode, type FailedCall } from '../src/ops/dashboard/DashboardSnapshot.js';
import { describeNode, type NodeObservation } from '../src/ops/dashboard/describeNode.js';
import { NodeRoster } from '../src/ops/dashboard/NodeRoster.js';

const logger = createLogger({ name: 'test', level: 'silent' });

/** A clock tests move by hand. */
function manualClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function failure(overrides: Partial<FailedCall> = {}): FailedCall {
  return { at: 0, tool: 'echo_echo', nodeId: 'n1', outcome: 'error', error: 'boom', callId: 'c', traceId: null, attempts: [], durationMs: 1, ...overrides };
}

describe('CallRateWindow', () => {
  it('gives per-tool and total rates over the window, errors as the documented ratio', () => {
    const clock = manualClock();
    const window = new CallRateWindow(60, clock.now);
    clock.advance(59_000); // a full window since start
    const record = (tool: string, outcome: CallOutcome, n = 1): void => {
      for (let i = 0; i < n; i++) window.record(tool, outcome, 0.01);
    };
    record('echo_echo', 'ok', 6);
    record('echo_echo', 'no_replica', 2);
    record('echo_echo', 'tool_error', 3);
    record('echo_echo', 'cancelled', 1);
    record(UNKNOWN_TOOL, 'invalid_request');
    const { windowS, total, perTool } = window.rates();
    assert.equal(windowS, 60);
    const echo = perTool.get('echo_echo')!;
    assert.equal(echo.calls, 12);
    assert.equal(echo.errors, 2, 'tool errors and cancellations are not mesh errors');
    assert.equal(echo.toolErrors, 3);
    assert.equal(echo.callRate, 12 / 60);
    assert.equal(echo.errorRate, 2 / 12);
    assert.ok(Math.abs(echo.meanMs! - 10) < 1e-9);
    assert.equal(total.calls, 13);
    assert.equal(total.errors, 3);
  });

  it('forgets calls older than the window and divides by the time since start when shorter', () => {
    const clock = manualClock(1_700_000_000_000);
    const window = new CallRateWindow(10, clock.now);
    window.record('t', 'ok', 0);
    clock.advance(1000);
    window.record('t', 'ok', 0);
    let r = window.rates();
    assert.equal(r.windowS, 2, 'two seconds since start, the current one included');
    assert.equal(r.total.callRate, 1);
    clock.advance(9000);
    r = window.rates();
    assert.equal(r.windowS, 10);
    assert.equal(r.total.calls, 1, 'the first call left the window');
    clock.advance(1000);
    assert.equal(window.rates().total.calls, 0);
    assert.equal(window.rates().total.errorRate, null);
    assert.equal(window.rates().total.meanMs, null);
  });
});

describe('RecentFailures', () => {
  it('keeps the newest failures in a bounded ring, newest first', () => {
    const ring = new RecentFailures(3);
    for (let i = 1; i <= 5; i++) ring.add(failure({ at: i }));
    assert.deepEqual(ring.list().map((f) => f.at), [5, 4, 3]);
  });

  it('cuts long error texts', () => {
    const ring = new RecentFailures(2);
    ring.add(failure({ error: 'x'.repeat(10_000) }));
    const [kept] = ring.list();
    assert.equal(kept!.error!.length, FAILURE_ERROR_MAX_CHARS);
    assert.ok(kept!.error!.endsWith('…'));
  });
});

describe('CallActivityRecorder', () => {
  const setup = (): { rates: CallRateWindow; failures: RecentFailures; recorder: CallActivityRecorder } => {
    const rates = new CallRateWindow();
    const failures = new RecentFailures();
    return { rates, failures, recorder: new CallActivityRecorder(rates, failures) };
  };

  it('lists a failed call with the call id, trace id, attempts and error of the forwarder record; counts every call', () => {
    const { rates, failures, recorder } = setup();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    recorder.finished('slow_work', 'n2', 'error', 0.02, {
      callId: 'call-a',
      traceId,
      attempts: [{ nodeId: 'n1', result: 'node_lost' }, { nodeId: 'n2', result: 'error' }],
      error: 'node n2 failed',
    });
    recorder.finished('slow_work', 'n3', 'ok', 0.01, { callId: 'call-b', traceId: undefined, attempts: [{ nodeId: 'n3', result: 'ok' }], error: undefined });
    const listed = failures.list();
    assert.equal(listed.length, 1, 'an ok call is not a failure');
    const [f] = listed;
    FailedCallSchema.parse(f);
    assert.equal(f!.callId, 'call-a');
    assert.equal(f!.traceId, traceId);
    assert.deepEqual(f!.attempts, [{ nodeId: 'n1', result: 'node_lost' }, { nodeId: 'n2', result: 'error' }]);
    assert.equal(f!.nodeId, 'n2');
    assert.equal(f!.error, 'node n2 failed');
    assert.equal(f!.durationMs, 20);
    assert.equal(rates.rates().total.calls, 2);
  });

  it('lists a call refused before forwarding (no record) with why it was refused', () => {
    const { failures, recorder, rates } = setup();
    recorder.finished(UNKNOWN_TOOL, undefined, 'invalid_request', 0.0001);
    recorder.finished('echo_echo', undefined, 'invalid_request', 0.0001);
    assert.deepEqual(failures.list().map((f) => [f.tool, f.outcome, f.error, f.nodeId]), [
      ['echo_echo', 'invalid_request', 'arguments do not match the tool input schema', null],
      [UNKNOWN_TOOL, 'invalid_request', 'unknown tool', null],
    ]);
    assert.equal(rates.rates().total.calls, 2);
  });
});

describe('CompositeCallObserver', () => {
  it('hands every event to each observer, and a throwing one stops no other', () => {
    const heard: string[] = [];
    const recording = (name: string): CallObserver => ({
      attempt: (tool, node, result) => void heard.push(`${name} attempt ${tool} ${node} ${result}`),
      retry: (tool, reason) => void heard.push(`${name} retry ${tool} ${reason}`),
      failover: (tool, reason) => void heard.push(`${name} failover ${tool} ${reason}`),
      finished: (tool, node, outcome, _s, record) => void heard.push(`${name} finished ${tool} ${node ?? 'none'} ${outcome} ${record?.callId ?? 'no record'}`),
    });
    const throwing: CallObserver = {
      attempt: () => { throw new Error('observer bug'); },
      retry: () => { throw new Error('observer bug'); },
      failover: () => { throw new Error('observer bug'); },
      finished: () => { throw new Error('observer bug'); },
    };
    const composite = new CompositeCallObserver([recording('a'), throwing, recording('b')], logger);
    composite.attempt('t', 'n1', 'busy');
    composite.retry('t', 'busy');
    composite.failover('t', 'node_lost');
    composite.finished('t', undefined, 'no_replica', 1, { callId: 'c1', traceId: undefined, attempts: [], error: 'no replica' });
    assert.deepEqual(heard, [
      'a attempt t n1 busy', 'b attempt t n1 busy',
      'a retry t busy', 'b retry t busy',
      'a failover t node_lost', 'b failover t node_lost',
      'a finished t none no_replica c1', 'b finished t none no_replica c1',
    ]);
  });
});

describe('traceIdOfMeta', () => {
  it('reads the trace id of a valid W3C traceparent only', () => {
    assert.equal(traceIdOfMeta({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(traceIdOfMeta({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }), undefined);
    assert.equal(traceIdOfMeta({ traceparent: 'garbage' }), undefined);
    assert.equal(traceIdOfMeta({ traceparent: 42 }), undefined);
    assert.equal(traceIdOfMeta(undefined), undefined);
  });
});

function observation(overrides: Partial<NodeObservation> = {}, now = 1_000_000): NodeObservation {
  const registered: RegisteredNode = {
    record: NodeRecordSchema.parse({
      v: PROTOCOL_VERSION,
      nodeId: 'n1',
      instanceId: 'i1',
      mcpBaseUrl: 'http://127.0.0.1:7000',
      version: '0.1.0',
      capacity: 16,
      draining: false,
      startedAt: now - 60_000,
      servers: [{ name: 'echo', path: '/mcp/echo', toolDigest: 'd', toolCount: 2 }],
    }),
    health: 'passing',
    lastHeartbeatAt: now - 50_000, // the watch's copy: as old as the last record change
  };
  return {
    registered,
    heartbeat: { instanceId: 'i1', ping: { at: now - 300, natsRttMs: 1, inflight: 0, queued: 0, eventLoopLagMs: 2, uptimeS: 60, status: 'ok' }, at: now - 300, readAt: now - 100 },
    draining: false,
    connected: true,
    breaker: 'closed',
    servers: [{ name: 'echo', connected: true, toolCount: 2 }],
    outstanding: 0,
    running: 0,
    queued: 0,
    load: { v: PROTOCOL_VERSION, nodeId: 'n1', seq: 3, at: now - 400, inflight: 1, queued: 0, capacity: 16, eventLoopLagMs: 3, draining: false, tools: {} },
    loadReceivedAt: now - 400,
    ...overrides,
  };
}

describe('describeNode', () => {
  const now = 1_000_000;

  it('is healthy when every signal is fresh and fine, and carries ping data and load', () => {
    const row = describeNode(observation(), now);
    assert.equal(row.status, 'healthy');
    assert.deepEqual(row.reasons, []);
    assert.equal(row.ping?.natsRttMs, 1);
    assert.equal(row.heartbeatAgeS, 0.3);
    assert.deepEqual(row.load, { inflight: 1, queued: 0, capacity: 16, eventLoopLagMs: 3, ageS: 0.4 });
  });

  it('is unhealthy with an open breaker or without a session, naming why', () => {
    assert.equal(describeNode(observation({ breaker: 'open' }), now).status, 'unhealthy');
    const disconnected = describeNode(observation({ connected: false }), now);
    assert.equal(disconnected.status, 'unhealthy');
    assert.match(disconnected.reasons.join(), /no working upstream session/);
  });

  it('is degraded when reports are late or missing, a server is down, or the loop lags', () => {
    const late = describeNode(observation({ loadReceivedAt: now - 2600 }), now);
    assert.equal(late.status, 'degraded');
    assert.deepEqual(late.reasons, ['no load report for 2.6 s']);
    assert.equal(describeNode(observation({ load: undefined, loadReceivedAt: undefined }), now).reasons[0], 'no load report received yet');
    const heartbeatLate = observation();
    heartbeatLate.heartbeat = { ...heartbeatLate.heartbeat!, at: now - 3000, readAt: now - 500 };
    assert.match(describeNode(heartbeatLate, now).reasons.join(), /heartbeat late: 2\.5 s old when last read/);
    const toolBroken = describeNode(observation({ servers: [{ name: 'echo', connected: true, toolCount: 2, toolBreakers: { say: 'open', whoami: 'half-open', fail: 'closed' } }] }), now);
    assert.equal(toolBroken.status, 'degraded');
    assert.deepEqual(toolBroken.reasons, ['tool breaker open: echo/say', 'tool breaker half-open: echo/whoami']);
    const serverDown = describeNode(observation({ servers: [{ name: 'echo', connected: true, toolCount: 2 }, { name: 'slow', connected: false, toolCount: 2 }] }), now);
    assert.deepEqual(serverDown.reasons, ['not connected: slow']);
    const lagging = observation();
    lagging.load = { ...lagging.load!, eventLoopLagMs: 400 };
    assert.deepEqual(describeNode(lagging, now).reasons, ['event loop lag 400 ms']);
  });

  it('is draining while it drains, and shows no ping data before the registry was read', () => {
    const row = describeNode(observation({ draining: true, heartbeat: undefined }), now);
    assert.equal(row.status, 'draining');
    assert.equal(row.ping, null);
    assert.equal(row.heartbeatAgeS, null);
  });
});

describe('NodeRoster', () => {
  const row = (nodeId: string, overrides: Partial<DashboardNode> = {}): DashboardNode => ({ ...describeNode(observation(), 1_000_000), nodeId, ...overrides });

  it('keeps a node that vanished as gone, one that drained as left, and forgets them when they return or age out', () => {
    const roster = new NodeRoster(2000, 60_000);
    let t = 0;
    roster.observe([row('a'), row('b', { load: { inflight: 0, queued: 0, capacity: 16, eventLoopLagMs: 1, ageS: 2.5 } }), row('c', { draining: true, status: 'draining' })], (t += 1000));
    const after = roster.observe([row('a')], (t += 1000));
    assert.deepEqual(after.map((n) => [n.nodeId, n.status]), [['a', 'healthy'], ['b', 'gone'], ['c', 'left']]);
    const b = after.find((n) => n.nodeId === 'b')!;
    assert.match(b.reasons[0]!, /heartbeats stopped/);
    assert.equal(b.leftAt, t);
    assert.equal(b.load, null);
    assert.deepEqual(after.find((n) => n.nodeId === 'c')!.reasons, ['deregistered after draining']);

    assert.deepEqual(roster.observe([row('a'), row('b')], (t += 1000)).map((n) => [n.nodeId, n.status]), [['a', 'healthy'], ['b', 'healthy'], ['c', 'left']]);
    assert.deepEqual(roster.observe([row('a'), row('b')], (t += 60_000)).map((n) => n.nodeId), ['a', 'b'], 'departed nodes age out');
  });

  it('says a node that was fine a moment before it left was deregistered, and one it knew nothing about left', () => {
    const roster = new NodeRoster(2000);
    roster.observe([row('a'), row('b', { load: null, heartbeatAgeS: null })], 1000);
    const after = roster.observe([], 2000);
    assert.deepEqual(after.map((n) => [n.nodeId, n.status, n.reasons]), [
      ['a', 'left', ['deregistered (stopped or drained)']],
      ['b', 'gone', ['left the registry view']],
    ]);
  });
});

describe('dashboard page files', () => {
  it('are all there, and the script parses', async () => {
    const assets = await loadDashboardAssets();
    assert.deepEqual([...assets.keys()].sort(), ['/dashboard', '/dashboard/dashboard.css', '/dashboard/dashboard.js']);
    assert.match(assets.get('/dashboard')!.body.toString(), /<script src="dashboard\/dashboard.js" defer><\/script>/);
    await promisify(execFile)(process.execPath, ['--check', fileURLToPath(new URL('dashboard.js', DASHBOARD_ASSETS_DIR))]);
  });
});
