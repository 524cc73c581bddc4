/**
 * Two router replicas share one view of node load through the agents' NATS reports. Router A fills node
 * x1 with long calls; router B, which placed none of them, sees them in x1's load and progress reports and
 * sends its own calls to x2 instead (progress-aware balancing). Both routers show the same reported load.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ChaosMesh, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';

interface SlowStatus {
  running: number;
  completed: number;
}

const LONG_CALLS = 6;
/** Steps of 50 ms: two minutes, aborted once the test is done. */
const LONG_CALL_STEPS = 2400;
let mesh: ChaosMesh;
let routerA: string;
let routerB: string;

async function client(url: string): Promise<{ client: Client; close: () => Promise<void> }> {
  const c = new Client({ name: 'chaos-routers', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await c.connect(transport);
  return { client: c, close: async () => { await transport.terminateSession().catch(() => {}); await c.close(); } };
}

before(async () => {
  mesh = await ChaosMesh.start();
  routerA = await mesh.startRouter([], 'router-a');
  routerB = await mesh.startRouter([], 'router-b');
  await mesh.startAgent('x1', [], ['slow=@flotilla/examples/slow']);
  await mesh.waitForReplicas('slow_work', ['x1']);
});

after(async () => {
  await mesh?.stop();
});

describe('two router replicas', () => {
  it('share the load view: B steers away from the node A loaded with long calls', async () => {
    const a = await client(routerA);
    const b = await client(routerB);
    const controller = new AbortController();
    try {
      // A puts long calls with progress on x1, the only replica so far. They must still be running when B
      // places its calls, however slowly a busy machine gets there (starting x2 and waiting for both views
      // took up to 11 s of 20 s on a contended 2-core machine), so they last far longer than the test
      // needs; `finally` cancels them.
      const long = Array.from({ length: LONG_CALLS }, () =>
        a.client.callTool({ name: 'slow_work', arguments: { steps: LONG_CALL_STEPS, stepMs: 50 } }, undefined, { signal: controller.signal, onprogress: () => {}, timeout: 240_000 }).catch(() => undefined),
      );
      await eventually(async () => assert.equal((await mesh.callDirect<SlowStatus>('x1', 'slow', 'status')).running, LONG_CALLS), 20_000);
      await mesh.startAgent('x2', [], ['slow=@flotilla/examples/slow']);
      await mesh.waitForReplicas('slow_work', ['x1', 'x2']);

      // Both routers see the same reported load of x1, although only A placed calls there.
      for (const url of [routerA, routerB]) {
        await eventually(async () => {
          const x1 = (await mesh.api<NodesView>('/api/v1/nodes', url)).nodes.find((n) => n.nodeId === 'x1');
          assert.equal(x1?.load?.inflight, LONG_CALLS, url);
          assert.equal(x1?.progress.length, LONG_CALLS, `${url}: progress of every long call`);
        }, 20_000, 100);
      }
      const viewB = await mesh.api<NodesView>('/api/v1/nodes', routerB);
      assert.equal(viewB.strategy, 'progress-aware');
      assert.equal(viewB.nodes.find((n) => n.nodeId === 'x1')?.outstanding, 0, 'B has no call of its own on x1');

      // B's calls all go to x2.
      const before = await Promise.all(['x1', 'x2'].map((id) => mesh.callDirect<SlowStatus>(id, 'slow', 'status')));
      for (let i = 0; i < 12; i++) await b.client.callTool({ name: 'slow_work', arguments: { steps: 1, stepMs: 10 } });
      const afterwards = await Promise.all(['x1', 'x2'].map((id) => mesh.callDirect<SlowStatus>(id, 'slow', 'status')));
      assert.deepEqual(afterwards.map((s, i) => s.completed - before[i]!.completed), [0, 12]);
    } finally {
      controller.abort();
      await a.close();
      await b.close();
    }
  });
});
