/**
 * The router in a real mesh: real `flotilla agent` and `flotilla router` processes on a real nats-server,
 * called by the MCP SDK client. Covers merging, progress, cancellation (explicit and by a dropped
 * connection), spreading over replicas, sampling/elicitation/logging forwarding, resources and prompts,
 * and an agent killed with SIGKILL in the middle of a call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode } from '../../packages/protocol/src/errors.js';
import { CallToolResultSchema, type McpError } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, until, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { parseExposition } from '../harness/prometheusText.js';

const text = (r: unknown): string => CallToolResultSchema.parse(r).content.map((c) => (c.type === 'text' ? c.text : '')).join('');

interface NodesView {
  nodes: { nodeId: string; outstanding: number; breaker: string }[];
}
interface ToolsView {
  tools: { name: string; server: string; replicas: { nodeId: string }[] }[];
}
interface SlowStatus {
  running: number;
  completed: number;
  cancelled: number;
}

let mesh: FlotillaMesh;
let c: TestClient;

/** Calls `status` of the slow example on `server` of one agent directly (not through the router). */
const slowStatusOn = (nodeId: string, server: string): Promise<SlowStatus> => mesh.callDirect<SlowStatus>(nodeId, server, 'status');

before(async () => {
  mesh = await FlotillaMesh.start();
  // Least-outstanding breaks ties in turn, so its spread of sequential calls is even by construction; the
  // default strategy's spread (ties broken at random) is checked with a second router further down.
  await mesh.startRouter(['--strategy', 'least-outstanding']);
  await mesh.startAgents({
    a1: ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow'],
    a2: ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow'],
    a3: [
      'echo=@flotilla/examples/echo',
      'slow=@flotilla/examples/slow',
      'interactive=@flotilla/examples/interactive',
      'docs=@flotilla/examples/docs',
      'failing=@flotilla/examples/failing',
    ],
    // `solo` runs the slow example on one node only, so a call to it lands on a4 for sure.
    a4: ['solo=@flotilla/examples/slow'],
  });
  c = await mesh.connectClient();
  await mesh.waitForCatalog({
    echo_echo: ['a1', 'a2', 'a3'],
    slow_work: ['a1', 'a2', 'a3'],
    solo_work: ['a4'],
    interactive_chatty: ['a3'],
    docs_list_pages: ['a3'],
  });
});

after(() => mesh?.stop());

describe('router with real agents', () => {
  it('merges the tools of every agent into one namespaced list, replicas as one entry', async () => {
    const names = (await c.client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      'docs_list_pages',
      'echo_add', 'echo_echo',
      'failing_crash', 'failing_fail',
      'interactive_ask_model', 'interactive_ask_user', 'interactive_chatty',
      'slow_status', 'slow_work',
      'solo_status', 'solo_work',
    ]);
    const tools = await mesh.api<ToolsView>('/api/v1/tools');
    assert.deepEqual(tools.tools.find((t) => t.name === 'echo_echo')!.replicas.map((r) => r.nodeId), ['a1', 'a2', 'a3']);
    assert.equal(text(await c.client.callTool({ name: 'echo_add', arguments: { a: 2, b: 40 } })), '42');
  });

  it('forwards progress to the client', async () => {
    const progress: number[] = [];
    const r = await c.client.callTool({ name: 'slow_work', arguments: { steps: 3, stepMs: 10 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    assert.equal(text(r), 'done: 3 steps of 10 ms');
    assert.deepEqual(progress, [1, 2, 3]);
  });

  /** Makes 30 sequential calls of `stepMs` through `client`; how many each replica of `slow` served. */
  const spreadOf = async (client: TestClient, stepMs = 0): Promise<number[]> => {
    const before = await Promise.all(['a1', 'a2', 'a3'].map((n) => slowStatusOn(n, 'slow')));
    for (let i = 0; i < 30; i++) await client.client.callTool({ name: 'slow_work', arguments: { steps: 1, stepMs } });
    const afterwards = await Promise.all(['a1', 'a2', 'a3'].map((n) => slowStatusOn(n, 'slow')));
    const served = afterwards.map((s, i) => s.completed - before[i]!.completed);
    assert.equal(served.reduce((a, b) => a + b, 0), 30);
    return served;
  };

  it('spreads calls over the replicas', async () => {
    const served = await spreadOf(c);
    for (const [i, n] of served.entries()) assert.ok(n > 0, `a${i + 1} served no call: ${JSON.stringify(served)}`);
  });

  it('spreads sequential calls over equally fast idle replicas with the default strategy too', async () => {
    // A second router, progress-aware, freshly started: its first calls are each node's cold ones.
    await mesh.startRouter([], 'router-default');
    await mesh.waitForReplicas('slow_work', ['a1', 'a2', 'a3']);
    const client = await connectClient(mesh.routers[1]!.url, 'spread-default');
    try {
      // The strategy sends a call to the node where it is expected to finish first, and spreads only
      // ties (estimates within 25% or 10 ms): that is what "equally fast" means to it. Calls of next to
      // nothing (a few ms) are not equally fast on a busy machine: scheduling delays of 10-30 ms on one
      // agent make it truly slower for them, and it is rightly avoided (for a 30-call run, all of it).
      // Calls of 150 ms take about as long on every node, whatever the load, so they are ties, and a
      // strategy that did not spread ties (always the first candidate, the lowest node id) still fails:
      // with ties broken at random, a node sampled for none of 30 calls has odds (2/3)^30, about 5e-6.
      const served = await spreadOf(client, 150);
      for (const [i, n] of served.entries()) assert.ok(n > 0, `a${i + 1} served no call: ${JSON.stringify(served)}`);
    } finally {
      await client.close();
    }
  });

  it('carries many concurrent calls, without leaking listeners, and shows the load agents report', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, () => c.client.callTool({ name: 'slow_work', arguments: { steps: 2, stepMs: 20 } })),
    );
    for (const r of results) assert.equal(text(r), 'done: 2 steps of 20 ms');
    await until('no call outstanding', async () => (await mesh.api<NodesView>('/api/v1/nodes')).nodes.every((n) => n.outstanding === 0));
    assert.doesNotMatch(mesh.router.stderr.join(''), /MaxListenersExceededWarning/);
    await until('load reports of every node', async () => {
      const view = await mesh.api<{ nodes: { nodeId: string; load?: { nodeId: string; capacity: number } }[] }>('/api/v1/nodes');
      return view.nodes.length === 4 && view.nodes.every((n) => n.load?.nodeId === n.nodeId && n.load.capacity > 0);
    });
  });

  it('stops the tool on its node when the client cancels', async () => {
    const before = await slowStatusOn('a4', 'solo');
    const controller = new AbortController();
    const call = c.client.callTool({ name: 'solo_work', arguments: { steps: 1000, stepMs: 50 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => {
        if (p.progress === 2) controller.abort('enough');
      },
    });
    await assert.rejects(call);
    await until('the node to count the cancellation', async () => {
      const s = await slowStatusOn('a4', 'solo');
      return s.cancelled > before.cancelled && s.running === 0;
    });
  });

  it('stops the tool on its node when the client just drops its connection', async () => {
    const before = await slowStatusOn('a4', 'solo');
    const controller = new AbortController();
    const res = await fetch(mesh.routerUrl, {
      method: 'POST',
      signal: controller.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': c.transport.sessionId!,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'dropped', method: 'tools/call', params: { name: 'solo_work', arguments: { steps: 1000, stepMs: 50 }, _meta: { progressToken: 'p' } } }),
    });
    await res.body!.getReader().read(); // first progress: the tool runs
    controller.abort();
    await until('the node to count the cancellation', async () => {
      const s = await slowStatusOn('a4', 'solo');
      return s.cancelled > before.cancelled && s.running === 0;
    });
  });

  it('forwards sampling, elicitation and logging between the node and the calling client', async () => {
    assert.equal(text(await c.client.callTool({ name: 'interactive_ask_model', arguments: { question: 'meaning?' } })), 'model (test-model) says: forty-two');
    assert.equal((c.samplingRequests.at(-1) as { messages: { content: { text: string } }[] }).messages[0]!.content.text, 'meaning?');
    assert.equal(text(await c.client.callTool({ name: 'interactive_ask_user', arguments: { message: 'Name?' } })), 'hello, stranger');
    assert.equal((c.elicitationRequests.at(-1) as { message: string }).message, 'Name?');
    const logsBefore = c.logs.length;
    assert.equal(text(await c.client.callTool({ name: 'interactive_chatty', arguments: { count: 3 } })), 'sent 3 log messages');
    await until('three log messages', () => c.logs.length >= logsBefore + 3);
    assert.deepEqual(c.logs.slice(logsBefore).map((l) => l.data), ['message 1 of 3', 'message 2 of 3', 'message 3 of 3']);
  });

  it('serves resources, templates, prompts and completions of the docs server', async () => {
    assert.ok((await c.client.listResources()).resources.some((r) => r.uri === 'docs://readme'));
    assert.deepEqual((await c.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate), ['docs://pages/{name}']);
    const page = await c.client.readResource({ uri: 'docs://pages/architecture' });
    assert.match((page.contents[0] as { text: string }).text, /^# Architecture/);
    const prompt = await c.client.getPrompt({ name: 'docs_summarize', arguments: { page: 'operations' } });
    assert.match((prompt.messages[0]!.content as { text: string }).text, /flotilla nodes/);
    const done = await c.client.complete({ ref: { type: 'ref/prompt', name: 'docs_summarize' }, argument: { name: 'page', value: 'op' } });
    assert.deepEqual(done.completion.values, ['operations']);
  });

  it('passes tool errors through as results, which do not count against the node', async () => {
    for (let i = 0; i < 6; i++) {
      const failed = await c.client.callTool({ name: 'failing_fail', arguments: { reason: 'on purpose' } });
      assert.equal(failed.isError, true);
      assert.match(text(failed), /on purpose/);
      const crashed = await c.client.callTool({ name: 'failing_crash', arguments: {} });
      assert.equal(crashed.isError, true);
    }
    const nodes = await mesh.api<NodesView>('/api/v1/nodes');
    assert.deepEqual(nodes.nodes.map((n) => [n.nodeId, n.breaker]), [['a1', 'closed'], ['a2', 'closed'], ['a3', 'closed'], ['a4', 'closed']]);
  });

  it('fails a call on an agent killed with SIGKILL at once, naming the node, and drops the agent from the catalog', async () => {
    const toolsChanged = c.listChanged.tools;
    const a4 = mesh.agent('a4');
    const call = c.client.callTool({ name: 'solo_work', arguments: { steps: 100_000, stepMs: 50 } }, undefined, {
      // Far beyond the test's own timeout: the call must fail because the router noticed, not time out.
      timeout: 600_000,
      onprogress: (p) => {
        if (p.progress === 2) a4.signal('SIGKILL');
      },
    });
    await assert.rejects(call, (e: McpError) => {
      // solo_work is idempotent, so the router tried to place it again; no other node hosts it.
      assert.equal(e.code, FlotillaErrorCode.NoReplica, e.message);
      assert.match(e.message, /tried a4 \(connection to node a4 lost/);
      return true;
    });
    await a4.exited;
    await until('list_changed after the agent left', () => c.listChanged.tools > toolsChanged);
    await until('the agent gone from the tool list', async () => !(await c.client.listTools()).tools.some((t) => t.name.startsWith('solo_')));
    await until('the agent gone from the node view', async () => !(await mesh.api<NodesView>('/api/v1/nodes')).nodes.some((n) => n.nodeId === 'a4'));
    await assert.rejects(c.client.callTool({ name: 'solo_work', arguments: { steps: 1, stepMs: 0 } }), /Unknown tool: solo_work/);
    assert.equal(text(await c.client.callTool({ name: 'echo_echo', arguments: { text: 'still serving' } })), 'still serving');
  });

  it('counts the lost attempt in its metrics and keeps no gauge of the dead node', async () => {
    const m = parseExposition(await (await fetch(mesh.opsUrl('/metrics'))).text());
    assert.equal(m.value('flotilla_router_attempts_total', { tool: 'solo_work', node: 'a4', result: 'node_lost' }), 1);
    assert.equal(m.value('flotilla_router_calls_total', { tool: 'solo_work', node: 'none', outcome: 'no_replica' }), 1);
    assert.ok(m.samples('flotilla_router_calls_total', { tool: 'solo_work', outcome: 'cancelled' }).length > 0);
    assert.deepEqual(m.samples('flotilla_router_inflight_calls').map((x) => x.labels.node).sort(), ['a1', 'a2', 'a3']);
    assert.equal(m.value('flotilla_router_catalog_nodes'), 3);
  });

  it('reports ready with the remaining nodes', async () => {
    const res = await fetch(mesh.opsUrl('/readyz'));
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ready: boolean; nodes: number };
    assert.equal(body.ready, true);
    assert.equal(body.nodes, 3);
  });
});
