/**
 * Chaos: draining under steady load. `flotilla drain <node>` (and SIGTERM on an agent) makes the node
 * refuse new calls (the router stops sending them as soon as it sees the draining flag; any that race it
 * get -32011 and go elsewhere), lets its in-flight calls finish, then deregisters and exits. A rolling
 * restart of every agent this way loses no call, non-idempotent ones included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CallLoad, summarizeOutcomes } from '../harness/CallLoad.js';
import { ChaosMesh, chaosShapes, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';

const NODES = ['d1', 'd2', 'd3'];
const AGENT_ARGS = ['--drain-grace', '20000'];
let mesh: ChaosMesh;
/** The test's load, stopped in `after` even when an assertion failed midway. */
let running: CallLoad | undefined;

before(async () => {
  mesh = await ChaosMesh.start();
  await mesh.startRouter();
  await Promise.all(NODES.map((id) => mesh.startAgent(id, AGENT_ARGS)));
  for (const tool of ['echo_echo', 'slow_work', 'ledger_append']) await mesh.waitForReplicas(tool, NODES);
});

after(async () => {
  await running?.stop();
  await mesh?.stop();
});

/** Waits until `nodeId` runs calls for the router again after a restart. */
async function waitServing(nodeId: string): Promise<void> {
  await mesh.waitForReplicas('ledger_append', NODES);
  await eventually(async () => {
    const node = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === nodeId);
    assert.ok((node?.outstanding ?? 0) > 0, `${nodeId} gets calls`);
  }, 30_000, 20);
}

describe('drain under load', () => {
  it('drains a node with `flotilla drain`, then restarts every agent in turn with SIGTERM, losing no call', async () => {
    const load = (running = new CallLoad(mesh.routers[0]!.url, { workers: 9, shapes: chaosShapes(30, 10, 'drain'), clientTimeoutMs: 60_000 }));
    await load.start();
    await eventually(async () => {
      const d3 = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'd3');
      assert.ok(load.count() >= 20 && (d3?.outstanding ?? 0) >= 3, `calls ${load.count()}, on d3 ${d3?.outstanding}`);
    }, 30_000, 20);

    // `flotilla drain d3`: the command returns at once; d3 finishes its calls, deregisters and exits 0.
    const drain = FlotillaProcess.spawn('drain', ['drain', 'd3', '--nats', mesh.nats.url]);
    assert.equal((await drain.exited).code, 0, drain.stderr.join(''));
    assert.deepEqual(await mesh.agent('d3').exited, { code: 0, signal: null });
    assert.ok(mesh.agent('d3').lines.some((l) => l.msg === 'agent stopped' && l.reason === 'drained'), 'd3 drained before stopping');
    await mesh.startAgent('d3', AGENT_ARGS);
    await waitServing('d3');

    // Rolling restart: SIGTERM drains each agent the same way.
    for (const id of ['d1', 'd2', 'd3']) {
      const agent = mesh.agent(id);
      agent.signal('SIGTERM');
      assert.deepEqual(await agent.exited, { code: 0, signal: null });
      assert.ok(agent.lines.some((l) => l.msg === 'agent stopped' && l.reason === 'drained'), `${id} drained before stopping`);
      await mesh.startAgent(id, AGENT_ARGS);
      await waitServing(id);
    }
    const outcomes = await load.stop();
    const summary = summarizeOutcomes(outcomes);
    assert.equal(outcomes.filter((o) => o.hung).length, 0, `hung calls: ${summary}`);
    assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => `${o.tool}: ${o.message}`), [], `failed calls: ${summary}`);
    const retried = mesh.routerLines((l) => l.msg === 'call failed on a node; trying another replica').map((l) => String(l.reason).split(':')[0]);
    process.stderr.write(`# chaos-drain: ${outcomes.length} calls through 4 drains; refusals retried elsewhere: ${retried.length} (${[...new Set(retried)].join(', ')}); ${summary}\n`);
  });
});
