/**
 * Chaos: nats-server stopped and started again under steady load. NATS carries the registry (NATS KV)
 * and the load/progress reports, not the calls: while it is down the router keeps its last view of the
 * mesh and balances on its own counts, so every call still succeeds; when it is back, load reports resume
 * and nothing has crashed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CallLoad, summarizeOutcomes } from '../harness/CallLoad.js';
import { ChaosMesh, chaosShapes, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';

let mesh: ChaosMesh;
/** The test's load, stopped in `after` even when an assertion failed midway. */
let running: CallLoad | undefined;

before(async () => {
  mesh = await ChaosMesh.start();
  await mesh.startRouter();
  await Promise.all(['n1', 'n2'].map((id) => mesh.startAgent(id)));
  for (const tool of ['echo_echo', 'slow_work', 'ledger_append']) await mesh.waitForReplicas(tool, ['n1', 'n2']);
});

after(async () => {
  await running?.stop();
  await mesh?.stop();
});

describe('NATS restart under load', () => {
  it('keeps routing while NATS is down, resumes load reports when it is back, and crashes nothing', async () => {
    const load = (running = new CallLoad(mesh.routers[0]!.url, { workers: 6, shapes: chaosShapes(20, 5, 'nats'), clientTimeoutMs: 30_000 }));
    await load.start();
    await eventually(() => assert.ok(load.count() >= 30, `calls ${load.count()}, in flight: ${load.describeInFlight()}; router log:\n${mesh.recentRouterLog()}`), 30_000);

    await mesh.nats.stop();
    const downAt = Date.now();
    // Longer than the heartbeat staleness (3 s): the router must not drop nodes it cannot hear about.
    await eventually(() => {
      assert.ok(Date.now() - downAt > 4000, 'NATS stays down for 4 s');
      assert.ok(load.count((o) => o.startedAt > downAt && o.ok && o.tool === 'slow_work') >= 10, 'idempotent calls keep succeeding');
      assert.ok(load.count((o) => o.startedAt > downAt && o.ok && o.tool === 'ledger_append') >= 10, 'non-idempotent calls keep succeeding');
    }, 30_000);
    const duringOutage = load.count((o) => o.startedAt > downAt);
    const upAt = Date.now();
    await mesh.nats.restart();

    // Load reports of both nodes resume.
    await eventually(async () => {
      const view = await mesh.api<NodesView>('/api/v1/nodes');
      assert.deepEqual(view.nodes.map((n) => n.nodeId), ['n1', 'n2']);
      for (const n of view.nodes) assert.ok((n.loadReceivedAt ?? 0) > upAt, `${n.nodeId} reported at ${n.loadReceivedAt}, NATS back at ${upAt}`);
    }, 30_000, 200);
    const afterRestart = load.count();
    await eventually(() => assert.ok(load.count() >= afterRestart + 30, `calls ${load.count()}, in flight: ${load.describeInFlight()}; router log:\n${mesh.recentRouterLog()}`), 30_000);
    const outcomes = await load.stop();
    const summary = summarizeOutcomes(outcomes);

    assert.equal(outcomes.filter((o) => o.hung).length, 0, `hung calls: ${summary}`);
    assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => `${o.tool}: ${o.message}`), [], `failed calls: ${summary}`);
    for (const p of [mesh.routers[0]!.process, mesh.agent('n1'), mesh.agent('n2')]) {
      assert.equal(p.child.exitCode, null, `${p.label} exited`);
      assert.doesNotMatch(p.stderr.join(''), /Unhandled|TypeError|ReferenceError/, `${p.label} stderr`);
    }
    assert.ok(mesh.routerLines((l) => l.msg === 'NATS connection lost: load reports paused, balancing on this router\'s own counts').length >= 1);
    assert.deepEqual(mesh.routerLines((l) => l.msg === 'node left the registry view' || l.msg === 'circuit breaker opened'), [], 'no node was dropped or cut off');
    process.stderr.write(`# chaos-nats: ${outcomes.length} calls, ${duringOutage} during the outage; ${summary}\n`);
  });
});
