import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  LeastOutstandingBalancer,
  P2cEwmaBalancer,
  ProgressAwareBalancer,
  RoundRobinBalancer,
  createBalancer,
  expectedCompletion,
  ownCountsOnly,
  remainingMs,
  sampleTwo,
  seededRandom,
  serviceTimes,
  type LoadSignals,
  type Placement,
  type ReplicaView,
} from '../src/index.js';

const replica = (nodeId: string, outstanding = 0, capacity = 4): ReplicaView => ({ nodeId, outstanding, capacity });

/** A replica with hand-built load signals (what NodeEndpoint assembles from reports and its own books). */
function loaded(nodeId: string, signals: Partial<LoadSignals> & { outstanding?: number; capacity?: number } = {}): ReplicaView {
  const outstanding = signals.outstanding ?? signals.own?.outstanding ?? 0;
  const full: LoadSignals = {
    progress: signals.progress ?? [],
    reportedTools: signals.reportedTools ?? {},
    own: signals.own ?? { outstanding, unseen: [], finishedSinceReport: 0 },
    measured: signals.measured ?? { tools: {} },
    ...(signals.report ? { report: signals.report } : {}),
  };
  return { nodeId, outstanding, capacity: signals.capacity ?? 16, loadSignals: () => full };
}

const TOOL = 'slow/work';
const fresh = (inflight: number, queued = 0, capacity = 16) => ({ ageMs: 100, inflight, queued, capacity });
const tool = (ewmaMs: number, ageMs = 0) => ({ [TOOL]: { ewmaMs, ageMs } });

/** How often each node is picked over `n` placements. */
function share(pick: () => Placement<ReplicaView> | undefined, n = 1000): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = pick()!.replica.nodeId;
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

describe('LeastOutstandingBalancer', () => {
  it('picks the replica with the fewest outstanding calls', () => {
    const b = new LeastOutstandingBalancer();
    const picked = b.pick([replica('a', 3), replica('b', 1), replica('c', 2)], { key: 't' });
    assert.equal(picked?.replica.nodeId, 'b');
    assert.equal(picked?.reason(), 'fewest outstanding (1)');
  });

  it('shares work among tied replicas instead of always taking the first', () => {
    const b = new LeastOutstandingBalancer();
    const candidates = [replica('a'), replica('b'), replica('c')];
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const id = b.pick(candidates, { key: 't' })!.replica.nodeId;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), ['a', 'b', 'c']);
    for (const n of counts.values()) assert.equal(n, 100);
  });

  it('never picks a busier replica while a less busy one exists', () => {
    const b = new LeastOutstandingBalancer();
    for (let i = 0; i < 50; i++) {
      const picked = b.pick([replica('busy', 5), replica('idle-1', 0), replica('idle-2', 0)], { key: 't' })!;
      assert.notEqual(picked.replica.nodeId, 'busy');
    }
  });

  it('returns undefined without candidates', () => {
    assert.equal(new LeastOutstandingBalancer().pick([], { key: 't' }), undefined);
  });
});

describe('RoundRobinBalancer', () => {
  it('takes replicas in turn, per key', () => {
    const b = new RoundRobinBalancer();
    const candidates = [replica('a', 9), replica('b'), replica('c')];
    assert.deepEqual([1, 2, 3, 4].map(() => b.pick(candidates, { key: 'x' })!.replica.nodeId), ['a', 'b', 'c', 'a']);
    assert.equal(b.pick(candidates, { key: 'y' })!.replica.nodeId, 'a');
  });

  it('returns undefined without candidates', () => {
    assert.equal(new RoundRobinBalancer().pick([], { key: 't' }), undefined);
  });
});

describe('sampleTwo', () => {
  it('draws two distinct candidates, each pair about equally often', () => {
    const random = seededRandom(7);
    const pairs: Record<string, number> = {};
    for (let i = 0; i < 3000; i++) {
      const [x, y] = sampleTwo(['a', 'b', 'c'], random) as [string, string];
      assert.notEqual(x, y);
      const key = [x, y].sort().join('');
      pairs[key] = (pairs[key] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(pairs).sort(), ['ab', 'ac', 'bc']);
    for (const n of Object.values(pairs)) assert.ok(n > 850 && n < 1150, JSON.stringify(pairs));
  });

  it('returns the only candidate alone', () => {
    assert.deepEqual(sampleTwo(['a'], Math.random), ['a']);
  });
});

describe('remainingMs', () => {
  it('extrapolates from progress: elapsed × (total − progress) / progress, less the time since the report', () => {
    assert.equal(remainingMs({ tool: TOOL, progress: 2, total: 10, elapsedMs: 1000, ageMs: 0 }, 999), 4000);
    assert.equal(remainingMs({ tool: TOOL, progress: 2, total: 10, elapsedMs: 1000, ageMs: 500 }, 999), 3500);
    assert.equal(remainingMs({ tool: TOOL, progress: 10, total: 10, elapsedMs: 1000, ageMs: 0 }, 999), 0);
  });

  it('falls back to the tool EWMA less the time already run, at least a quarter of it, without a total', () => {
    assert.equal(remainingMs({ tool: TOOL, progress: 3, elapsedMs: 100, ageMs: 0 }, 1000), 900);
    assert.equal(remainingMs({ tool: TOOL, progress: 3, elapsedMs: 5000, ageMs: 0 }, 1000), 250);
  });
});

describe('expectedCompletion', () => {
  it('is the tool EWMA on an idle node', () => {
    const s = loaded('a', { report: fresh(0), reportedTools: tool(200) }).loadSignals!(0);
    assert.deepEqual(expectedCompletion(s, 16, TOOL, 200), { ms: 200, workMs: 0, serviceMs: 200 });
  });

  it('spreads the remaining work of running calls over the node capacity', () => {
    const s = loaded('a', {
      report: fresh(2, 0, 4),
      reportedTools: tool(200),
      progress: [
        { tool: TOOL, progress: 1, total: 5, elapsedMs: 1000, ageMs: 0 }, // 4000 left
        { tool: TOOL, progress: 4, total: 5, elapsedMs: 4000, ageMs: 0 }, // 1000 left
      ],
    }).loadSignals!(0);
    assert.equal(expectedCompletion(s, 4, TOOL, 200).ms, 5000 / 4 + 200);
  });

  it('counts queued calls and running calls without progress from the node typical call time', () => {
    // 6 visible calls on 4 slots: 4 running (none with progress: half a call each), 2 queued (a call each).
    const s = loaded('a', { report: fresh(4, 2, 4), reportedTools: tool(400) }).loadSignals!(0);
    assert.equal(expectedCompletion(s, 4, TOOL, 400).workMs, 4 * 200 + 2 * 400);
  });

  it('adds this router own calls the report cannot show, and removes those that finished since', () => {
    const s = loaded('a', {
      report: fresh(3, 0, 4),
      reportedTools: tool(100),
      own: { outstanding: 2, unseen: [{ tool: TOOL, elapsedMs: 0 }, { tool: TOOL, elapsedMs: 40 }], finishedSinceReport: 2 },
    }).loadSignals!(0);
    // Visible: 3 − 2 finished = 1 running without progress (50) + unseen 100 + 60.
    assert.equal(expectedCompletion(s, 4, TOOL, 100).workMs, 50 + 100 + 60);
  });

  it('counts only own calls without a fresh report (stale or NATS down)', () => {
    const s = ownCountsOnly(3);
    assert.equal(expectedCompletion(s, 2, TOOL, 100).ms, (3 * 100) / 2 + 100);
  });
});

describe('serviceTimes', () => {
  it('takes each node own estimate when fresh', () => {
    assert.deepEqual(serviceTimes({ ewmaMs: 100, ageMs: 0 }, { ewmaMs: 500, ageMs: 0 }), [100, 500]);
  });

  it('assumes a node without statistics is like its peer (cold start), or a stand-in when neither has any', () => {
    assert.deepEqual(serviceTimes(undefined, { ewmaMs: 300, ageMs: 0 }), [300, 300]);
    assert.deepEqual(serviceTimes(undefined, undefined), [100, 100]);
  });

  it('lets the slower estimate drift toward the faster one when nobody refreshed it', () => {
    const [, tenSeconds] = serviceTimes({ ewmaMs: 100, ageMs: 0 }, { ewmaMs: 500, ageMs: 10_000 });
    assert.ok(Math.abs(tenSeconds - (100 + 400 / Math.E)) < 1e-6);
    const [, longAgo] = serviceTimes({ ewmaMs: 100, ageMs: 0 }, { ewmaMs: 500, ageMs: 600_000 });
    assert.ok(longAgo < 100.001);
  });
});

describe('ProgressAwareBalancer', () => {
  const balancer = (seed = 1) => new ProgressAwareBalancer({ random: seededRandom(seed), now: () => 0 });

  it('prefers the node where the call finishes first, not the one with fewer calls', () => {
    // `ending` runs 6 calls that are nearly done; `starting` runs 2 that just began (and are long).
    const ending = loaded('ending', {
      outstanding: 6,
      report: fresh(6, 0, 8),
      reportedTools: tool(1000),
      progress: Array.from({ length: 6 }, () => ({ tool: TOOL, progress: 9, total: 10, elapsedMs: 900, ageMs: 0 })),
    });
    const starting = loaded('starting', {
      outstanding: 2,
      report: fresh(2, 0, 8),
      reportedTools: tool(1000),
      progress: Array.from({ length: 2 }, () => ({ tool: TOOL, progress: 1, total: 100, elapsedMs: 100, ageMs: 0 })),
    });
    const b = balancer();
    assert.deepEqual(share(() => b.pick([ending, starting], { key: 'slow_work', tool: TOOL }), 50), { ending: 50 });
    // least-outstanding sees only counts and picks the other one.
    assert.equal(new LeastOutstandingBalancer().pick([ending, starting], { key: 'slow_work' })!.replica.nodeId, 'starting');
  });

  it('keeps calls off a slow node while fast nodes have free slots, unlike latency × outstanding', () => {
    const fast = (id: string) => loaded(id, { outstanding: 5, report: fresh(5), reportedTools: tool(100), measured: { peakEwmaMs: 100, tools: {} } });
    const slow = loaded('slow', { outstanding: 0, report: fresh(0), reportedTools: tool(500), measured: { peakEwmaMs: 500, tools: {} } });
    const candidates = [fast('fast-1'), fast('fast-2'), slow];
    const progressAware = balancer(3);
    const counts = share(() => progressAware.pick(candidates, { key: 'slow_work', tool: TOOL }));
    assert.equal(counts.slow, undefined, JSON.stringify(counts));
    // P2C-EWMA: 100 × (5 + 1) = 600 > 500 × (0 + 1): the slow node wins whenever it is sampled.
    const p2c = new P2cEwmaBalancer({ random: seededRandom(3), now: () => 0 });
    assert.ok((share(() => p2c.pick(candidates, { key: 'slow_work' })).slow ?? 0) > 500);
  });

  it('uses the slow node once the fast ones queue', () => {
    const fast = (id: string) => loaded(id, { outstanding: 116, report: fresh(16, 100, 16), reportedTools: tool(100) });
    const slow = loaded('slow', { outstanding: 0, report: fresh(0), reportedTools: tool(500) });
    const b = balancer(5);
    const counts = share(() => b.pick([fast('fast-1'), fast('fast-2'), slow], { key: 'slow_work', tool: TOOL }));
    assert.ok((counts.slow ?? 0) > 600, JSON.stringify(counts));
  });

  it('covers the lag of reports with its own calls: a burst does not all land on the node that looked idle', () => {
    // Both reported idle; this router already sent 6 calls to `a` since the report.
    const a = loaded('a', { outstanding: 6, report: fresh(0), reportedTools: tool(100), own: { outstanding: 6, unseen: Array.from({ length: 6 }, () => ({ tool: TOOL, elapsedMs: 0 })), finishedSinceReport: 0 } });
    const b = loaded('b', { outstanding: 0, report: fresh(0), reportedTools: tool(100) });
    const pa = balancer(9);
    assert.deepEqual(share(() => pa.pick([a, b], { key: 'slow_work', tool: TOOL }), 100), { b: 100 });
  });

  it('steers away from load other routers put on a node (seen only in its reports)', () => {
    const busyElsewhere = loaded('busy', {
      outstanding: 0,
      report: fresh(8, 0, 8),
      reportedTools: tool(1000),
      progress: Array.from({ length: 8 }, () => ({ tool: TOOL, progress: 1, total: 10, elapsedMs: 100, ageMs: 0 })),
    });
    const idle = loaded('idle', { outstanding: 1, report: fresh(1, 0, 8), reportedTools: tool(1000) });
    const b = balancer(11);
    assert.deepEqual(share(() => b.pick([busyElsewhere, idle], { key: 'slow_work', tool: TOOL }), 100), { idle: 100 });
  });

  it('shares work between equally fast idle nodes instead of letting noise pick one', () => {
    const a = loaded('a', { report: fresh(0), reportedTools: tool(2.0) });
    const b = loaded('b', { report: fresh(0), reportedTools: tool(4.5) });
    const pa = balancer(13);
    const counts = share(() => pa.pick([a, b], { key: 'echo_echo', tool: TOOL }));
    assert.ok(counts.a! > 400 && counts.b! > 400, JSON.stringify(counts));
  });

  it('falls back to own outstanding counts for replicas without signals (cold start)', () => {
    const b = balancer(17);
    const counts = share(() => b.pick([replica('a', 4, 4), replica('b', 0, 4)], { key: 't' }), 100);
    assert.deepEqual(counts, { b: 100 });
  });

  it('is deterministic for a seed and returns undefined without candidates', () => {
    const candidates = [replica('a'), replica('b'), replica('c')];
    const sequence = (b: ProgressAwareBalancer): string[] => Array.from({ length: 20 }, () => b.pick(candidates, { key: 't' })!.replica.nodeId);
    assert.deepEqual(sequence(balancer(21)), sequence(balancer(21)));
    assert.equal(balancer().pick([], { key: 't' }), undefined);
  });
});

describe('P2cEwmaBalancer', () => {
  const p2c = (seed = 1) => new P2cEwmaBalancer({ random: seededRandom(seed), now: () => 0 });

  it('picks the lower peak EWMA × (outstanding + 1)', () => {
    const a = loaded('a', { outstanding: 1, measured: { peakEwmaMs: 100, tools: {} } }); // 200
    const b = loaded('b', { outstanding: 0, measured: { peakEwmaMs: 300, tools: {} } }); // 300
    const balancer = p2c();
    assert.deepEqual(share(() => balancer.pick([a, b], { key: 't' }), 50), { a: 50 });
  });

  it('tries a node without samples when it has nothing outstanding, and penalizes it when it has', () => {
    const measured = loaded('measured', { outstanding: 3, measured: { peakEwmaMs: 1000, tools: {} } });
    assert.equal(p2c().pick([measured, loaded('new')], { key: 't' })!.replica.nodeId, 'new');
    assert.equal(p2c().pick([measured, loaded('new-busy', { outstanding: 1 })], { key: 't' })!.replica.nodeId, 'measured');
  });
});

describe('createBalancer', () => {
  it('builds each configured strategy', () => {
    for (const s of ['progress-aware', 'p2c-ewma', 'least-outstanding', 'round-robin'] as const) assert.equal(createBalancer(s).name, s);
  });
});
