/**
 * Chaos: an agent killed with SIGKILL under steady load (real router, agents and nats-server).
 *
 * Every call is bounded by a client timeout and its outcome counted: none may hang; read-only
 * (`echo_echo`) and idempotent (`slow_work`) calls all succeed, failed over to the survivors; a
 * non-idempotent call (`ledger_append`) either succeeds or gets NodeFailed naming the killed node, and
 * its side effect happens at most once (never re-run on another node).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode } from '../../packages/protocol/src/errors.js';
import { CallLoad, summarizeOutcomes } from '../harness/CallLoad.js';
import { ChaosMesh, chaosShapes, type LedgerEntries, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';

let mesh: ChaosMesh;
/** The test's load, stopped in `after` even when an assertion failed midway. */
let running: CallLoad | undefined;

before(async () => {
  mesh = await ChaosMesh.start();
  await mesh.startRouter();
  await Promise.all(['k1', 'k2', 'k3'].map((id) => mesh.startAgent(id)));
  for (const tool of ['echo_echo', 'slow_work', 'ledger_append']) await mesh.waitForReplicas(tool, ['k1', 'k2', 'k3']);
});

after(async () => {
  await running?.stop();
  await mesh?.stop();
});

describe('SIGKILL of an agent under load', () => {
  it('loses no read-only or idempotent call, fails non-idempotent ones clearly, hangs none', async () => {
    const load = (running = new CallLoad(mesh.routers[0]!.url, { workers: 9, shapes: chaosShapes(40, 10, 'kill'), clientTimeoutMs: 30_000 }));
    await load.start();
    // Kill k3 while it runs several calls for us.
    await eventually(async () => {
      const k3 = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'k3');
      assert.ok(load.count() >= 20 && (k3?.outstanding ?? 0) >= 3, `calls done ${load.count()}, on k3 ${k3?.outstanding}`);
    }, 30_000, 20);
    mesh.agent('k3').signal('SIGKILL');
    await mesh.agent('k3').exited;
    await eventually(async () => {
      const view = await mesh.api<NodesView>('/api/v1/nodes');
      assert.ok(!view.nodes.some((n) => n.nodeId === 'k3'), 'k3 still in the node view');
    }, 15_000);
    const goneAt = Date.now();
    // Keep the load on the survivors for a while.
    const afterKill = load.count();
    await eventually(() => assert.ok(load.count() >= afterKill + 30, `calls ${load.count()}, in flight: ${load.describeInFlight()}; router log:\n${mesh.recentRouterLog()}`), 30_000);
    const outcomes = await load.stop();
    const summary = summarizeOutcomes(outcomes);

    assert.equal(outcomes.filter((o) => o.hung).length, 0, `hung calls: ${summary}`);
    const lost = outcomes.filter((o) => o.kind !== 'non-idempotent' && !o.ok);
    assert.deepEqual(lost, [], `read-only/idempotent calls lost: ${summary}`);
    for (const o of outcomes.filter((x) => x.kind === 'non-idempotent' && !x.ok)) {
      assert.equal(o.code, FlotillaErrorCode.NodeFailed, `${o.message} (${summary})`);
      assert.match(o.message!, /^MCP error -32013: Node k3 failed while running ledger_append: .*not retried because ledger_append is not marked read-only or idempotent$/);
      // Calls sent just after the kill may still fail: one can go out on the router's pooled connection to
      // k3 before the router sees that socket die, and then it cannot be told from a call k3 accepted.
      // Once the router knew k3 was gone, no call may fail because of it.
      assert.ok(o.startedAt <= goneAt, 'a call placed after k3 left the view failed');
    }
    // The kill hit calls in flight: idempotent ones were run again elsewhere, or non-idempotent ones failed.
    const failedOver = mesh.routerLines((l) => l.msg === 'call failed on a node; trying another replica' && l.nodeId === 'k3' && l.kind === 'lost').length;
    const nodeFailed = outcomes.filter((o) => o.code === FlotillaErrorCode.NodeFailed).length;
    assert.ok(failedOver + nodeFailed >= 1, `no call was caught by the kill: ${summary}`);

    // At most once: a failed append ran on no survivor; a successful one on at most one (none if k3 answered it).
    const ledgers = await Promise.all(['k1', 'k2'].map((id) => mesh.callDirect<LedgerEntries>(id, 'ledger', 'entries')));
    const onSurvivors = ledgers.flatMap((l) => l.last);
    for (const o of outcomes.filter((x) => x.tool === 'ledger_append')) {
      const copies = onSurvivors.filter((e) => e === String(o.args.entry)).length;
      assert.ok(copies <= (o.ok ? 1 : 0), `append ${String(o.args.entry)} (${o.ok ? 'ok' : 'failed'}) is in ${copies} survivor ledgers`);
    }
    assert.equal(new Set(onSurvivors).size, onSurvivors.length, 'an entry was appended twice');
    process.stderr.write(`# chaos-kill: ${outcomes.length} calls, ${failedOver} failed over, ${nodeFailed} NodeFailed; ${summary}\n`);
  });
});
