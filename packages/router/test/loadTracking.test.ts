/**
 * What the router knows about node load, each part alone: the shared view of NATS load and progress
 * reports, the router's own call ledger that corrects their lag, its latency measurements, and the
 * watchdog that takes silent, unresponsive nodes out of rotation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_VERSION, subjects, type CallProgress, type LoadReport } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import type { NatsConnection } from '@nats-io/transport-node';
import { MIN_SAMPLES_FOR_P95, NodeLatency, NodeLoadView, NodeWatchdog, OwnCallLedger, PeakEwma, type WatchedNode } from '../src/index.js';

const logger = createLogger({ name: 'test', level: 'silent' });
// The view is fed directly here; only `start()` would touch the connection.
const view = (): NodeLoadView => new NodeLoadView({} as NatsConnection, subjects(), logger);

const load = (nodeId: string, seq: number, at: number, extra: Partial<LoadReport> = {}): LoadReport => ({
  v: PROTOCOL_VERSION,
  nodeId,
  seq,
  at,
  inflight: 0,
  queued: 0,
  capacity: 4,
  eventLoopLagMs: 0,
  draining: false,
  tools: {},
  ...extra,
});
const progress = (callId: string, p: number): CallProgress => ({ callId, server: 'slow', tool: 'work', progress: p, total: 10, elapsedMs: p * 100 });

describe('NodeLoadView', () => {
  it('keeps the newest load report of each node, and accepts a restarted agent whose sequence starts again', () => {
    const v = view();
    v.acceptLoad(load('a', 5, 1000, { inflight: 3 }), 1000);
    v.acceptLoad(load('a', 4, 900, { inflight: 9 }), 1001);
    assert.equal(v.snapshot('a')!.load!.inflight, 3);
    v.acceptLoad(load('a', 0, 2000, { inflight: 1 }), 2000);
    assert.equal(v.snapshot('a')!.load!.inflight, 1);
    assert.equal(v.latestLoad('a')!.receivedAt, 2000);
  });

  it('merges coalesced progress reports per call, freshest first', () => {
    const v = view();
    const t = Date.now();
    v.acceptProgress('a', [progress('c1', 1), progress('c2', 1)], t);
    v.acceptProgress('a', [progress('c1', 2)], t + 100);
    const r = v.reports('a', t + 150);
    assert.deepEqual(r.progress.map((p) => [p.progress.callId, p.progress.progress]), [['c1', 2], ['c2', 1]]);
    assert.deepEqual(v.snapshot('a')!.progress.map((p) => p.callId).sort(), ['c1', 'c2']);
  });

  it('drops the progress of a call when this router call ends, or when it stops being refreshed', () => {
    const v = view();
    const t = Date.now();
    v.acceptProgress('a', [progress('mine', 1), progress('theirs', 1)], t);
    v.callEnded('a', 'mine');
    assert.deepEqual(v.reports('a', t + 10).progress.map((p) => p.progress.callId), ['theirs']);
    assert.deepEqual(v.reports('a', t + 2500).progress, []);
  });

  it('gives a call that reports rarely a longer grace (three of its own intervals)', () => {
    const v = view();
    const t = Date.now();
    v.acceptProgress('a', [progress('rare', 1)], t);
    v.acceptProgress('a', [progress('rare', 2)], t + 5000);
    assert.equal(v.reports('a', t + 5000 + 14_000).progress.length, 1);
    assert.equal(v.reports('a', t + 5000 + 16_000).progress.length, 0);
  });

  it('tracks when each tool EWMA was last refreshed (its completed count grew)', () => {
    const v = view();
    const tools = (completed: number) => ({ 'slow/work': { ewmaMs: 100, completed } });
    v.acceptLoad(load('a', 1, 1, { tools: tools(3) }), 1000);
    v.acceptLoad(load('a', 2, 2, { tools: tools(3) }), 2000);
    assert.equal(v.reports('a', 2000).toolRefreshedAt['slow/work'], 1000);
    v.acceptLoad(load('a', 3, 3, { tools: tools(4) }), 3000);
    assert.equal(v.reports('a', 3000).toolRefreshedAt['slow/work'], 3000);
  });
});

describe('OwnCallLedger', () => {
  it('splits own calls by what a report can show: queued here or sent after it are unseen', () => {
    const ledger = new OwnCallLedger();
    ledger.placed('queued', 'slow/work', 100);
    ledger.placed('early', 'slow/work', 100);
    ledger.sent('early', 110);
    ledger.placed('late', 'slow/work', 100);
    ledger.sent('late', 500);
    const split = ledger.versusReport(400, 600);
    assert.deepEqual([...split.unseenCallIds].sort(), ['late', 'queued']);
    assert.deepEqual(split.unseen.map((u) => u.elapsedMs), [500, 500]);
    assert.equal(ledger.outstanding, 3);
  });

  it('counts calls the report still shows that have finished since', () => {
    const ledger = new OwnCallLedger();
    for (const id of ['a', 'b', 'c']) {
      ledger.placed(id, undefined, 0);
      ledger.sent(id, 10);
    }
    ledger.ended('a', 50); // before the report
    ledger.ended('b', 300); // after it
    const split = ledger.versusReport(200, 400);
    assert.equal(split.finishedSinceReport, 1);
    assert.deepEqual(split.unseen, []);
  });

  it('forgets finishes older than its memory (10 s) and keeps at most 8,192', () => {
    const ledger = new OwnCallLedger();
    const finish = (id: string, sentAt: number, endedAt: number): void => {
      ledger.placed(id, undefined, sentAt);
      ledger.sent(id, sentAt);
      ledger.ended(id, endedAt);
    };
    finish('old', -10, 0);
    for (let i = 0; i < 3000; i++) finish(`c${i}`, -10, 20_000 + i);
    // A report received at 5 still shows all of them; the one that finished 20 s ago is forgotten.
    assert.equal(ledger.versusReport(5, 23_000).finishedSinceReport, 3000);
    for (let i = 0; i < 10_000; i++) finish(`d${i}`, -10, 23_000);
    assert.equal(ledger.versusReport(5, 23_000).finishedSinceReport, 8192);
    finish('last', 30_000, 33_500);
    assert.equal(ledger.versusReport(5, 33_500).finishedSinceReport, 0, 'all that finished before 23.5 s is past memory');
    assert.equal(ledger.versusReport(30_010, 33_600).finishedSinceReport, 1);
  });

  it('treats every outstanding call as unseen without a report', () => {
    const ledger = new OwnCallLedger();
    ledger.placed('x', 'slow/work', 0);
    ledger.sent('x', 1);
    assert.equal(ledger.versusReport(undefined, 10).unseen.length, 1);
  });
});

describe('PeakEwma', () => {
  it('jumps to a slower sample at once and decays toward faster ones and toward zero over time', () => {
    const e = new PeakEwma(1000);
    assert.equal(e.value(0), undefined);
    e.observe(100, 0);
    e.observe(500, 10);
    assert.equal(e.value(10), 500);
    e.observe(100, 1010); // one time constant later: weight e^-1 on the old cost
    assert.ok(Math.abs(e.value(1010)! - (500 / Math.E + 100 * (1 - 1 / Math.E))) < 1e-9);
    assert.ok(e.value(11_010)! < 1);
  });
});

describe('NodeLatency', () => {
  it('keeps a per-tool EWMA with its age, and a p95 once enough samples exist', () => {
    const l = new NodeLatency();
    for (let i = 1; i < MIN_SAMPLES_FOR_P95; i++) l.observe('t', i, 1000);
    assert.equal(l.p95Ms('t'), undefined);
    for (let i = 0; i < 80; i++) l.observe('t', i < 76 ? 10 : 1000, 2000);
    // The window keeps the last 64 samples: 60 × 10 ms and 4 × 1000 ms, so the p95 is 1000.
    assert.equal(l.p95Ms('t'), 1000);
    assert.deepEqual(Object.keys(l.toolEstimates(2500)), ['t']);
    assert.equal(l.toolEstimates(2500).t!.ageMs, 500);
    assert.ok(l.peakEwmaMs(2000)! >= 10);
  });
});

describe('NodeWatchdog', () => {
  function watched(nodeId: string, answers: boolean | undefined): WatchedNode & { marked: string[]; pings: number } {
    const node = {
      nodeId,
      marked: [] as string[],
      pings: 0,
      checkLiveness: async () => {
        node.pings += 1;
        return answers;
      },
      markUnresponsive: (reason: string) => void node.marked.push(reason),
    };
    return node;
  }
  const options = { suspectAfterMs: 2000, probeTimeoutMs: 100, probeEveryMs: 1000, reconnectGraceMs: 0, intervalMs: 1000 };

  it('probes a node whose reports stopped and takes it out of rotation when it does not answer either', async () => {
    const v = view();
    const t = Date.now();
    v.acceptLoad(load('paused', 1, 1), t);
    v.acceptLoad(load('fine', 1, 1), t + 2500);
    const paused = watched('paused', false);
    const fine = watched('fine', true);
    const dog = new NodeWatchdog(() => [paused, fine], v, logger, options);
    await dog.check(t + 1000);
    assert.equal(paused.pings, 0, 'not suspected yet');
    await dog.check(t + 2500);
    assert.equal(paused.pings, 1);
    assert.equal(fine.pings, 0);
    assert.equal(paused.marked.length, 1);
    assert.match(paused.marked[0]!, /stopped reporting load for 2500 ms and did not answer a ping/);
    await dog.check(t + 2700);
    assert.equal(paused.pings, 1, 'probes are spaced');
  });

  it('keeps a node that answers although its reports stopped (cut off from NATS)', async () => {
    const v = view();
    const t = Date.now();
    v.acceptLoad(load('cut-off', 1, 1), t);
    const node = watched('cut-off', true);
    await new NodeWatchdog(() => [node], v, logger, options).check(t + 5000);
    assert.equal(node.pings, 1);
    assert.deepEqual(node.marked, []);
  });

  it('judges nobody while this router NATS link is down or just came back, nor nodes that never reported', async () => {
    const v = view();
    const t = Date.now();
    v.acceptLoad(load('a', 1, 1), t);
    const a = watched('a', false);
    const never = watched('never', false);
    const dog = new NodeWatchdog(() => [a, never], v, logger, { ...options, reconnectGraceMs: 3000 });
    v.natsStatusChanged(false, t + 1000);
    await dog.check(t + 5000);
    assert.equal(a.pings, 0, 'NATS down');
    v.natsStatusChanged(true, t + 4000);
    await dog.check(t + 5000);
    assert.equal(a.pings, 0, 'NATS just back');
    await dog.check(t + 7500);
    assert.equal(a.pings, 1);
    assert.equal(never.pings, 0);
  });
});
