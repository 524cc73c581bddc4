/**
 * Protection and long calls through a real router, in-process, against real SDK servers in a real NATS KV
 * registry: a tool that keeps failing on one node loses only that node's replica of that tool; hedged
 * read-only calls take the first answer and cancel the other copy; progress keeps long calls alive past
 * the router's call timeout, while a silent tool times out and counts against that tool's breaker; a node
 * that stops reporting and answering (without dropping its connections, like a paused process) has its
 * breaker opened by the watchdog.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode, PROTOCOL_VERSION, encodeJson, subjects, type LoadReport } from '@flotilla/protocol';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, CallToolResultSchema, ErrorCode, ListToolsRequestSchema, McpError, PingRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inProcessMesh } from './fixtures/InProcessMesh.js';
import { until } from './fixtures/mcpClient.js';
import { TEST_SERVERS, type NodeJournal } from './fixtures/TestNode.js';

const text = (r: unknown): string => CallToolResultSchema.parse(r).content.map((c) => (c.type === 'text' ? c.text : '')).join('');

/** Per node: whether `flaky/lookup` answers with a JSON-RPC internal error, and how long `lag/find` takes. */
const behaviour = new Map<string, { lookupFails: boolean; findMs: number }>();
const of = (nodeId: string) => behaviour.get(nodeId) ?? { lookupFails: false, findMs: 0 };

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => resolve(true), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve(false);
    }, { once: true });
  });
}

/**
 * `flaky`: tools answered by a low-level handler, so a failure is a JSON-RPC error (McpServer would turn
 * it into an `isError` result). `lookup` fails where told; `ping` always works.
 */
TEST_SERVERS.flaky = (journal: NodeJournal, nodeId: string) => {
  const s = new McpServer({ name: 'flaky', version: '1.0.0' });
  s.server.registerCapabilities({ tools: {} });
  s.server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: [
      { name: 'lookup', description: 'Looks something up', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
      { name: 'ping', description: 'Answers pong', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
    ],
  }));
  s.server.setRequestHandler(CallToolRequestSchema, (req) => {
    journal.started.push(req.params.name);
    if (req.params.name === 'lookup' && of(nodeId).lookupFails) throw new McpError(ErrorCode.InternalError, `lookup backend down on ${nodeId}`);
    return { content: [{ type: 'text', text: `${req.params.name} on ${nodeId}` }] };
  });
  return s;
};

/** A `lag/find` this slow is journaled as `find-slow`. */
const SLOW_FIND_MS = 60_000;

/** `lag`: `find` (read-only) takes as long as told on each node; `quiet` works without progress. */
TEST_SERVERS.lag = (journal: NodeJournal, nodeId: string) => {
  const s = new McpServer({ name: 'lag', version: '1.0.0' });
  s.registerTool('find', { description: 'Finds, slowly where told', annotations: { readOnlyHint: true } }, async (extra) => {
    // A call started while the node was made slow is journaled apart: on a loaded machine the router may
    // also hedge (and cancel) some of the fast warm-up calls, and those must not blur the count.
    const { findMs } = of(nodeId);
    const entry = findMs >= SLOW_FIND_MS ? 'find-slow' : 'find';
    journal.started.push(entry);
    const finished = await sleep(findMs, extra.signal);
    (finished ? journal.finished : journal.cancelled).push(entry);
    return { content: [{ type: 'text', text: nodeId }] };
  });
  s.registerTool('quiet', { description: 'Works 60 s without reporting progress (until cancelled)' }, async (extra) => {
    journal.started.push('quiet');
    const finished = await sleep(60_000, extra.signal);
    (finished ? journal.finished : journal.cancelled).push('quiet');
    return { content: [{ type: 'text', text: 'quiet done' }] };
  });
  return s;
};

/** Nodes whose `pausable` server is paused: pings and calls wait until resumed (a SIGSTOP stand-in that keeps heartbeating). */
const paused = new Map<string, Promise<void>>();
const resumers = new Map<string, () => void>();
function pause(nodeId: string): void {
  paused.set(nodeId, new Promise((resolve) => resumers.set(nodeId, resolve)));
}
function resume(nodeId: string): void {
  resumers.get(nodeId)?.();
  paused.delete(nodeId);
}

/** `pausable`: `step` (idempotent) answers with the node id, and waits, like pings, while the node is paused. */
TEST_SERVERS.pausable = (journal: NodeJournal, nodeId: string) => {
  const s = new McpServer({ name: 'pausable', version: '1.0.0' });
  s.registerTool('step', { description: 'Answers with the node id', annotations: { idempotentHint: true } }, async () => {
    journal.started.push('step');
    await paused.get(nodeId);
    journal.finished.push('step');
    return { content: [{ type: 'text', text: nodeId }] };
  });
  s.server.setRequestHandler(PingRequestSchema, async () => {
    await paused.get(nodeId);
    return {};
  });
  return s;
};

/** Publishes a load report for each node id every 200 ms, except for paused nodes (agents do it every second and on change). */
class FakeLoadReports {
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private constructor(private readonly nc: NatsConnection, private readonly nodeIds: string[]) {}
  static async start(natsUrl: string, nodeIds: string[]): Promise<FakeLoadReports> {
    const r = new FakeLoadReports(await connect({ servers: natsUrl }), nodeIds);
    r.timer = setInterval(() => r.publish(), 200);
    return r;
  }
  private publish(): void {
    for (const nodeId of this.nodeIds) {
      if (paused.has(nodeId)) continue;
      const report: LoadReport = { v: PROTOCOL_VERSION, nodeId, seq: this.seq++, at: Date.now(), inflight: 0, queued: 0, capacity: 8, eventLoopLagMs: 0, draining: false, tools: {} };
      this.nc.publish(subjects().load(nodeId), encodeJson(report));
    }
  }
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.nc.close();
  }
}

interface NodesView {
  nodes: { nodeId: string; breaker: string; servers: { name: string; toolBreakers: Record<string, string> }[] }[];
}

describe('per-tool breaker (in-process nodes)', () => {
  const mesh = inProcessMesh({ good: ['flaky'], bad: ['flaky'] });

  it('opens the breaker of a tool that keeps failing on one node, leaving that node other tools in rotation', async () => {
    behaviour.set('bad', { lookupFails: true, findMs: 0 });
    const lookupsOnBad = (): number => mesh.node('bad').journal.started.filter((t) => t === 'lookup').length;
    let failures = 0;
    // Every lookup runs on `bad`: `good` refuses calls as busy (which counts against no breaker) meanwhile,
    // whichever replica the balancer picks first. (Left to it, one slow failure on a loaded machine can make
    // `bad` look slow, and the balancer then avoids it for longer than this test waits.)
    const good = mesh.node('good');
    good.journal.busy = true;
    try {
      // Until the breaker opens, calls get `bad`'s JSON-RPC error (the server's own answer).
      await until('the breaker of lookup on bad to open', async () => {
        await mesh.c.client.callTool({ name: 'flaky_lookup', arguments: {} }).catch(() => failures++);
        const bad = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'bad')!;
        return bad.servers[0]!.toolBreakers.lookup === 'open';
      });
    } finally {
      good.journal.busy = false;
    }
    // The router's breakers have the default volume: the fifth failure on `bad` opened it.
    assert.equal(lookupsOnBad(), 5);
    assert.equal(failures, 5);
    const view = await mesh.api<NodesView>('/api/v1/nodes');
    const bad = view.nodes.find((n) => n.nodeId === 'bad')!;
    assert.equal(bad.breaker, 'closed', 'the node itself stays in rotation');
    // Now every lookup goes to `good`, and `bad` still serves ping.
    for (let i = 0; i < 10; i++) assert.equal(text(await mesh.c.client.callTool({ name: 'flaky_lookup', arguments: {} })), 'lookup on good');
    const pingedOn = new Set<string>();
    for (let i = 0; i < 20; i++) pingedOn.add(text(await mesh.c.client.callTool({ name: 'flaky_ping', arguments: {} })));
    assert.ok(pingedOn.has('ping on bad'), [...pingedOn].join(', '));
  });
});

describe('hedging read-only calls (in-process nodes)', () => {
  // Round-robin, so every other call starts on the node made slow (hedging does not depend on the strategy).
  const mesh = inProcessMesh({ h1: ['lag'], h2: ['lag'] }, { hedgeReadOnly: true, strategy: 'round-robin' });

  it('answers from the second copy when the first runs past its p95, and cancels the first', async () => {
    behaviour.set('h1', { lookupFails: false, findMs: 5 });
    behaviour.set('h2', { lookupFails: false, findMs: 5 });
    // Enough calls on both nodes for a p95 there.
    await until('a p95 on both nodes', async () => {
      await Promise.all(Array.from({ length: 10 }, () => mesh.c.client.callTool({ name: 'lag_find', arguments: {} })));
      return mesh.nodes.every((n) => n.journal.finished.filter((f) => f === 'find').length >= 25);
    });
    behaviour.set('h1', { lookupFails: false, findMs: SLOW_FIND_MS });
    const h1 = mesh.node('h1');
    const slowOnH1 = (list: string[]): number => list.filter((e) => e === 'find-slow').length;
    for (let i = 0; i < 12; i++) {
      // Far below h1's new 60 s: only a hedge can answer in time.
      assert.equal(text(await mesh.c.client.callTool({ name: 'lag_find', arguments: {} }, undefined, { timeout: 20_000 })), 'h2');
    }
    assert.ok(slowOnH1(h1.journal.started) > 0, 'some calls went to h1 first and were hedged');
    await until('h1 to see its copies cancelled', () => slowOnH1(h1.journal.cancelled) === slowOnH1(h1.journal.started));
  });
});

describe('long calls and the call timeout (in-process nodes)', () => {
  // Progress every 100 ms against a 2 s call timeout: only a 2 s gap between two steps could fail the call.
  const mesh = inProcessMesh({ l1: ['slow'] }, { callTimeoutMs: 2_000 });

  it('never times out a call while progress keeps coming', async () => {
    const progress: number[] = [];
    const startedAt = performance.now();
    const r = await mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 30, delayMs: 100 } }, undefined, { onprogress: (p) => progress.push(p.progress), timeout: 60_000 });
    const tookMs = performance.now() - startedAt;
    assert.equal(text(r), 'done 30');
    assert.equal(progress.length, 30);
    // Its 30 steps of 100 ms outlast the call timeout (sleeps only ever run long): progress kept it alive.
    assert.ok(tookMs > 2_000, `the call took ${Math.round(tookMs)} ms`);
  });
});

describe('silent calls and the call timeout (in-process nodes)', () => {
  const mesh = inProcessMesh({ l1: ['lag'] }, { callTimeoutMs: 1_000 });
  const lagBreakers = async (): Promise<{ node: string; tools: Record<string, string> }> => {
    const l1 = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'l1')!;
    return { node: l1.breaker, tools: l1.servers.find((s) => s.name === 'lag')!.toolBreakers };
  };

  it('fails a call that goes silent for longer than the call timeout, against the tool and not the node', async () => {
    assert.deepEqual(await lagBreakers(), { node: 'closed', tools: {} });
    // Five silent calls at once (the breaker's default volume), each failed by the call timeout.
    const silent = await Promise.allSettled(Array.from({ length: 5 }, () => mesh.c.client.callTool({ name: 'lag_quiet', arguments: {} }, undefined, { timeout: 60_000 })));
    for (const r of silent) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason), /Node l1 failed while running lag_quiet: no response or progress within 1000 ms/);
    }
    // They count against lag/quiet on l1, whose breaker opened; l1 itself stays in rotation.
    assert.deepEqual(await lagBreakers(), { node: 'closed', tools: { quiet: 'open' } });
    await assert.rejects(
      mesh.c.client.callTool({ name: 'lag_quiet', arguments: {} }),
      (e: McpError) => e.code === FlotillaErrorCode.NoReplica && /No healthy replica for lag_quiet/.test(e.message),
    );
    behaviour.set('l1', { lookupFails: false, findMs: 0 });
    assert.equal(text(await mesh.c.client.callTool({ name: 'lag_find', arguments: {} })), 'l1');
    await until('the node to see the silent calls cancelled', () => mesh.node('l1').journal.cancelled.filter((c) => c === 'quiet').length === 5);
  });
});

describe('watchdog: a node that stops reporting and answering (in-process nodes)', () => {
  const mesh = inProcessMesh({ w1: ['pausable'], w2: ['pausable'] });
  let reports: FakeLoadReports;
  before(async () => {
    reports = await FakeLoadReports.start(mesh.natsUrl, ['w1', 'w2']);
    await until('load reports of both nodes', async () => (await mesh.api<{ nodes: { load?: unknown }[] }>('/api/v1/nodes')).nodes.every((n) => n.load));
  });
  after(async () => {
    resume('w1');
    await reports?.stop();
  });

  it('opens its breaker, fails its in-flight calls over instead of letting them hang, and closes it once the node is back', async () => {
    pause('w1');
    const w1 = mesh.node('w1');
    const startedOnW1 = w1.journal.started.length;
    // Concurrent calls: some land on w1 and hang there until the watchdog gives up on it.
    const calls = Array.from({ length: 8 }, () => mesh.c.client.callTool({ name: 'pausable_step', arguments: {} }, undefined, { timeout: 60_000 }));
    await until('a call stuck on w1', () => w1.journal.started.length > startedOnW1);
    const answers = (await Promise.all(calls)).map(text);
    assert.deepEqual(new Set(answers), new Set(['w2']), 'the stuck calls failed over to w2');
    const view = await mesh.api<NodesView>('/api/v1/nodes');
    assert.equal(view.nodes.find((n) => n.nodeId === 'w1')?.breaker, 'open', 'w1 is still registered (it heartbeats) but out of rotation');
    for (let i = 0; i < 6; i++) assert.equal(text(await mesh.c.client.callTool({ name: 'pausable_step', arguments: {} })), 'w2');

    resume('w1');
    // After the reset timeout one trial call goes to w1; its answer closes the breaker.
    await until('w1 back in rotation', async () => {
      await mesh.c.client.callTool({ name: 'pausable_step', arguments: {} });
      return (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'w1')?.breaker === 'closed';
    }, 30_000);
  });
});
