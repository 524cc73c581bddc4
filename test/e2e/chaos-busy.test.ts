/**
 * Chaos: a node that answers busy. `tiny` runs one call at a time with one waiting; more get -32010 busy
 * from the agent's admission control, before anything runs, instead of piling up. The router treats that
 * as "not accepted" and places the call on another replica, for any tool (non-idempotent ones included),
 * so the client never sees it. Round-robin makes sure `tiny` gets its share of the load regardless of its
 * capacity.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CallLoad, summarizeOutcomes } from '../harness/CallLoad.js';
import { ChaosMesh, type LedgerEntries, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';

let mesh: ChaosMesh;
/** The test's load, stopped in `after` even when an assertion failed midway. */
let running: CallLoad | undefined;

before(async () => {
  mesh = await ChaosMesh.start();
  await mesh.startRouter(['--strategy', 'round-robin']);
  await mesh.startAgent('big', ['--capacity', '16']);
  await mesh.startAgent('tiny', ['--capacity', '1', '--max-queue', '1']);
  for (const tool of ['slow_work', 'ledger_append']) await mesh.waitForReplicas(tool, ['big', 'tiny']);
});

after(async () => {
  await running?.stop();
  await mesh?.stop();
});

describe('a node that answers busy', () => {
  it('keeps its queue bounded, and the router places the refused calls elsewhere, any tool', async () => {
    const shapes = [
      { tool: 'slow_work', kind: 'idempotent' as const, args: () => ({ steps: 4, stepMs: 25 }) },
      { tool: 'ledger_append', kind: 'non-idempotent' as const, args: (seq: number) => ({ entry: `busy-${seq}`, steps: 4, stepMs: 25 }) },
    ];
    const load = (running = new CallLoad(mesh.routers[0]!.url, { workers: 8, shapes, clientTimeoutMs: 30_000 }));
    await load.start();
    let maxQueuedOnTiny = 0;
    await eventually(async () => {
      const tiny = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'tiny');
      maxQueuedOnTiny = Math.max(maxQueuedOnTiny, tiny?.load?.queued ?? 0);
      const busy = mesh.routerLines((l) => l.msg === 'call failed on a node; trying another replica' && l.nodeId === 'tiny' && /^busy/.test(String(l.reason)));
      assert.ok(busy.length >= 10 && load.count() >= 100, `busy refusals ${busy.length}, calls ${load.count()}`);
    }, 60_000, 50);
    const outcomes = await load.stop();
    const summary = summarizeOutcomes(outcomes);

    assert.ok(maxQueuedOnTiny <= 1, `tiny queued ${maxQueuedOnTiny} calls`);
    assert.equal(outcomes.filter((o) => o.hung).length, 0, `hung calls: ${summary}`);
    assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => `${o.tool}: ${o.message}`), [], `failed calls: ${summary}`);
    // Refused means never started: each successful append happened exactly once, on one node.
    const ledgers = await Promise.all(['big', 'tiny'].map((id) => mesh.callDirect<LedgerEntries>(id, 'ledger', 'entries')));
    const appended = ledgers.flatMap((l) => l.last);
    const succeeded = outcomes.filter((o) => o.tool === 'ledger_append').map((o) => String(o.args.entry));
    assert.deepEqual([...appended].sort(), [...succeeded].sort());
    assert.ok(ledgers[1]!.appended > 0, 'tiny served appends too');
    const refusals = mesh.routerLines((l) => l.nodeId === 'tiny' && /^busy/.test(String(l.reason))).length;
    process.stderr.write(`# chaos-busy: ${outcomes.length} calls, ${refusals} busy refusals retried; ${summary}\n`);
  });
});
