/**
 * Two independent clients of the `stateful` example server, hosted by two real agents, through a real
 * router, compared with the same clients talking to one agent directly: every scenario runs both ways and
 * must give the same outcome, and that outcome must be isolation (logs, log levels, ticks, notes,
 * subscriptions, roots, capability-dependent tools, tasks: each client sees its own and nothing of the
 * other's). Then, through the router only: sticky affinity binds each client to one node, subscriptions
 * split over the two nodes reach their own clients, and a client whose node dies moves to the other, with
 * the move in the router's log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { McpError, type Root } from '@modelcontextprotocol/sdk/types.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { connectStatefulClient, structuredOf, textOf, type StatefulClient, type StatefulClientOptions } from '../harness/statefulClients.js';

const STATEFUL = 'stateful=@flotilla/examples/stateful';

/** Where a scenario's clients connect, and what the server's tools are called there. */
interface Target {
  readonly label: 'direct' | 'router';
  readonly url: string;
  tool(name: string): string;
}

interface WhoAmI {
  nodeId: string;
  sessionId: string;
  client: { name: string } | null;
  capabilities: Record<string, unknown>;
}

const clients: StatefulClient[] = [];

async function connect(target: Target, name: string, options: Omit<StatefulClientOptions, 'url' | 'name'> = {}): Promise<StatefulClient> {
  const c = await connectStatefulClient({ url: target.url, name, ...options });
  clients.push(c);
  return c;
}

/** The JSON-RPC error code (and whether its message says `pattern`) a request was answered with. */
async function rpcError(work: Promise<unknown>, pattern?: RegExp): Promise<{ code: number; says?: boolean }> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof McpError, `expected a JSON-RPC error, got ${String(err)}`);
    return { code: err.code, ...(pattern ? { says: pattern.test(err.message) } : {}) };
  }
  assert.fail('expected the request to fail');
}

/** The server's tool names this client is shown, without the router's namespace. */
async function toolNames(target: Target, c: StatefulClient): Promise<string[]> {
  const prefix = target.tool('');
  return (await c.client.listTools()).tools.map((t) => t.name.slice(prefix.length)).sort();
}

/** Each scenario runs on one target and says what the clients saw. */
const scenarios: Record<string, (t: Target) => Promise<unknown>> = {
  async 'logs and log levels'(t) {
    const a = await connect(t, 'log-a');
    const b = await connect(t, 'log-b');
    await a.client.setLoggingLevel('warning');
    await Promise.all([a.call(t.tool('log_burst'), { tag: 'from-a' }), b.call(t.tool('log_burst'), { tag: 'from-b' })]);
    await b.client.setLoggingLevel('error');
    await b.call(t.tool('log_burst'), { tag: 'again' });
    const whoA = (await a.call<WhoAmI>(t.tool('whoami'))).structured;
    return {
      a: a.logs.map((l) => `${l.level}:${(l.data as { tag: string }).tag}`),
      aOnlyOwnSession: a.logs.every((l) => (l.data as { sessionId: string }).sessionId === whoA.sessionId),
      b: b.logs.map((l) => `${l.level}:${(l.data as { tag: string }).tag}`),
    };
  },

  async 'ticks on the session stream, and stopping what another session started'(t) {
    const a = await connect(t, 'ticks-a');
    const b = await connect(t, 'ticks-b');
    const stopB = await b.call(t.tool('ticks_stop'));
    await a.call(t.tool('ticks_start'), { intervalMs: 20 });
    const again = await a.call(t.tool('ticks_start'), { intervalMs: 20 });
    await a.waitFor('three ticks on A', (c) => c.logs.filter((l) => l.logger === 'ticks').length >= 3);
    const stopA = await a.call<{ stopped: boolean; ticks: number }>(t.tool('ticks_stop'));
    await a.waitFor('every tick sent before the stop', (c) => c.logs.filter((l) => l.logger === 'ticks').length === stopA.structured.ticks);
    const whoA = (await a.call<WhoAmI>(t.tool('whoami'))).structured;
    return {
      stopB: { isError: stopB.isError, text: textOf(stopB) },
      secondStartRefused: again.isError,
      stopA: stopA.structured.stopped,
      ticksFromOwnSession: a.logs.filter((l) => l.logger === 'ticks').every((l) => (l.data as { sessionId: string }).sessionId === whoA.sessionId),
      bLogs: b.logs.length,
    };
  },

  async 'notes are per session'(t) {
    const a = await connect(t, 'notes-a');
    const b = await connect(t, 'notes-b');
    const put = await a.call(t.tool('note_put'), { name: 'secret', text: 'for A only' });
    const listA = (await a.client.listResources()).resources.map((r) => r.uri);
    const listB = (await b.client.listResources()).resources.map((r) => r.uri);
    const readA = (await a.client.readResource({ uri: 'note://secret' })).contents;
    const deniedB = await rpcError(b.client.readResource({ uri: 'note://secret' }), /Resource not found: note:\/\/secret/);
    await b.call(t.tool('note_put'), { name: 'secret', text: 'B has its own' });
    const readB = (await b.client.readResource({ uri: 'note://secret' })).contents;
    const readAAgain = (await a.client.readResource({ uri: 'note://secret' })).contents;
    await a.waitFor('list_changed for its note', (c) => c.counts.resourceListChanged >= 1);
    const invalid = await a.call(t.tool('note_put'), { name: 'not a name!', text: 'x' });
    return { put: put.structured, listA, listB, readA, deniedB, readB, readAAgain, invalidIsToolError: invalid.isError === true };
  },

  async 'resource updates reach only the subscriber'(t) {
    const a = await connect(t, 'sub-a');
    const b = await connect(t, 'sub-b');
    await a.client.subscribeResource({ uri: 'note://n' });
    await a.call(t.tool('note_put'), { name: 'n', text: 'a1' });
    await a.waitFor("A's update", (c) => c.resourceUpdates.length === 1);
    await b.call(t.tool('note_put'), { name: 'n', text: 'b1' });
    await b.client.subscribeResource({ uri: 'note://n' });
    await b.call(t.tool('note_put'), { name: 'n', text: 'b2' });
    await b.waitFor("B's update", (c) => c.resourceUpdates.length === 1);
    await a.client.unsubscribeResource({ uri: 'note://n' });
    await a.call(t.tool('note_put'), { name: 'n', text: 'a2' });
    await a.client.subscribeResource({ uri: 'note://marker' });
    await a.call(t.tool('note_put'), { name: 'marker', text: 'm' });
    await a.waitFor('the marker update', (c) => c.resourceUpdates.includes('note://marker'));
    return { a: a.resourceUpdates, b: b.resourceUpdates };
  },

  async 'roots reach the server, and roots tools only roots clients'(t) {
    const roots: Root[] = [{ uri: 'file:///work/a', name: 'a' }];
    const withRoots = await connect(t, 'roots-yes', { roots });
    const without = await connect(t, 'roots-no');
    const listedWith = (await toolNames(t, withRoots)).includes('roots_show');
    const listedWithout = (await toolNames(t, without)).includes('roots_show');
    const first = (await withRoots.call(t.tool('roots_show'))).structured;
    await withRoots.setRoots([...roots, { uri: 'file:///work/b', name: 'b' }]);
    // The notification travels on its own; the server counts it when it arrives.
    let second: Record<string, unknown> = {};
    const deadline = Date.now() + 20_000;
    while (second['listChangedCount'] !== 1 && Date.now() < deadline) second = (await withRoots.call(t.tool('roots_show'))).structured;
    const refused = await without.call(t.tool('roots_show'));
    return { listedWith, listedWithout, first, second, refused: refused.isError, askedWithout: without.counts.rootsRequests };
  },

  async 'capability-dependent tools, and sampling and elicitation of the calling client only'(t) {
    const sampler = await connect(t, 'sampler', { sampling: () => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled' } }) });
    const asker = await connect(t, 'asker', { elicitation: () => ({ action: 'accept', content: { name: 'Ada' } }) });
    const plain = await connect(t, 'plain');
    const tools = { plain: await toolNames(t, plain), sampler: await toolNames(t, sampler), asker: await toolNames(t, asker) };
    const llm = (await sampler.call(t.tool('ask_llm'), { prompt: 'hi' })).structured;
    const user = (await asker.call(t.tool('ask_user'))).structured;
    const notOffered = await plain.call(t.tool('ask_llm'), { prompt: 'hi' });
    return {
      tools,
      llm: llm['model'],
      user,
      notOfferedIsError: notOffered.isError,
      asked: [sampler.counts.samplingRequests, sampler.counts.elicitationRequests, asker.counts.samplingRequests, asker.counts.elicitationRequests, plain.counts.samplingRequests],
    };
  },

  async 'tasks run, report and stay in their session'(t) {
    const a = await connect(t, 'task-a');
    const b = await connect(t, 'task-b');
    const created = await a.startTask(t.tool('long_job'), { steps: 3, stepMs: 30 }, 60_000);
    const taskId = created.task.taskId;
    const listedA = (await a.client.experimental.tasks.listTasks()).tasks.some((x) => x.taskId === taskId);
    const listedB = (await b.client.experimental.tasks.listTasks()).tasks.length;
    const getB = await rpcError(b.client.experimental.tasks.getTask(taskId));
    const done = await a.pollTask(taskId);
    const result = await a.taskResult(taskId);
    await a.waitFor('the completed status', (c) => c.taskStatuses.some((s) => s.taskId === taskId && s.status === 'completed'));
    const who = (await a.call<WhoAmI>(t.tool('whoami'))).structured;
    const long = await a.startTask(t.tool('long_job'), { steps: 1000, stepMs: 50 });
    const cancelB = await rpcError(b.client.experimental.tasks.cancelTask(long.task.taskId));
    const cancelled = await a.client.experimental.tasks.cancelTask(long.task.taskId);
    return {
      created: created.task.status,
      listedA,
      listedB,
      getB,
      done: done.status,
      result: { text: textOf(result), sameSession: structuredOf<{ sessionId: string }>(result).sessionId === who.sessionId },
      statuses: a.taskStatuses.filter((s) => s.taskId === taskId).map((s) => s.status),
      bStatuses: b.taskStatuses.length,
      cancelB,
      cancelled: cancelled.status,
    };
  },
};

describe('two clients of the stateful server: through the router as directly', () => {
  let mesh: FlotillaMesh;
  let direct: Target;
  let router: Target;

  before(async () => {
    mesh = await FlotillaMesh.start();
    await mesh.startRouter(['--strategy', 'round-robin']);
    await Promise.all([
      mesh.startAgent('iso-1', ['--affinity', 'stateful=sticky'], [STATEFUL]),
      mesh.startAgent('iso-2', ['--affinity', 'stateful=sticky'], [STATEFUL]),
    ]);
    await mesh.waitForCatalog({ stateful_whoami: ['iso-1', 'iso-2'] });
    direct = { label: 'direct', url: mesh.serverUrl('iso-1', 'stateful'), tool: (n) => n };
    router = { label: 'router', url: mesh.routerUrl, tool: (n) => `stateful_${n}` };
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await mesh?.stop();
  });

  for (const [name, scenario] of Object.entries(scenarios)) {
    it(name, async () => {
      const expected = await scenario(direct);
      const got = await scenario(router);
      assert.deepEqual(got, expected, `through the router the clients saw otherwise than directly:\nrouter: ${JSON.stringify(got)}\ndirect: ${JSON.stringify(expected)}`);
      assertIsolated(name, expected);
    });
  }

  it('sticky affinity: each client stays on one node, subscriptions split over the two nodes reach their own clients', async () => {
    const a = await connect(router, 'sticky-a');
    const b = await connect(router, 'sticky-b');
    const whoA = (await a.call<WhoAmI>('stateful_whoami')).structured;
    const whoB = (await b.call<WhoAmI>('stateful_whoami')).structured;
    assert.notEqual(whoA.nodeId, whoB.nodeId, 'round-robin bound the two clients to different nodes');
    for (let i = 0; i < 6; i++) {
      assert.equal((await a.call<WhoAmI>('stateful_whoami')).structured.sessionId, whoA.sessionId, 'every call of A goes to its session on its node');
      assert.equal((await b.call<WhoAmI>('stateful_whoami')).structured.sessionId, whoB.sessionId);
    }
    // Each subscribes to its own note on its own node; ticks there update it.
    await a.client.subscribeResource({ uri: 'note://mine' });
    await b.client.subscribeResource({ uri: 'note://mine' });
    await a.call('stateful_ticks_start', { intervalMs: 20 });
    await b.call('stateful_ticks_start', { intervalMs: 20 });
    await a.waitFor('updates on A', (c) => c.resourceUpdates.length >= 3);
    await b.waitFor('updates on B', (c) => c.resourceUpdates.length >= 3);
    const stopA = await a.call<{ ticks: number }>('stateful_ticks_stop');
    const stopB = await b.call<{ ticks: number }>('stateful_ticks_stop');
    await a.waitFor("every tick's update on A", (c) => c.resourceUpdates.length === stopA.structured.ticks);
    await b.waitFor("every tick's update on B", (c) => c.resourceUpdates.length === stopB.structured.ticks);
    assert.ok(a.logs.filter((l) => l.logger === 'ticks').every((l) => (l.data as { sessionId: string }).sessionId === whoA.sessionId));
    assert.ok(b.logs.filter((l) => l.logger === 'ticks').every((l) => (l.data as { sessionId: string }).sessionId === whoB.sessionId));
  });

  it('sticky affinity: a client whose node dies moves to the other node, and the router says so', async () => {
    const a = await connect(router, 'mover-a');
    const b = await connect(router, 'mover-b');
    const whoA = (await a.call<WhoAmI>('stateful_whoami')).structured;
    const whoB = (await b.call<WhoAmI>('stateful_whoami')).structured;
    const doomed = whoA.nodeId;
    const survivor = whoA.nodeId === 'iso-1' ? 'iso-2' : 'iso-1';
    await a.call('stateful_note_put', { name: 'before', text: 'on the old node' });
    mesh.agent(doomed).signal('SIGKILL');
    // whoami is read-only: the call fails over; the binding moves with it.
    const moved = (await a.call<WhoAmI>('stateful_whoami')).structured;
    assert.equal(moved.nodeId, survivor);
    assert.notEqual(moved.sessionId, whoA.sessionId, 'a new session on the new node');
    assert.equal((await a.call<WhoAmI>('stateful_whoami')).structured.sessionId, moved.sessionId, 'and it sticks there');
    const line = await mesh.router.waitFor((l) => l.msg === 'sticky session moved to another node' && l.from === doomed && l.to === survivor);
    assert.equal(line.server, 'stateful');
    // The state on the dead node is gone with it, as with a restarted server.
    assert.equal((await rpcError(a.client.readResource({ uri: 'note://before' }))).code, -32002);
    if (whoB.nodeId === survivor) assert.equal((await b.call<WhoAmI>('stateful_whoami')).structured.sessionId, whoB.sessionId, 'a client on the surviving node keeps its session');
  });
});

/** What each scenario's outcome must be for the two clients to be isolated (checked on the direct run, which the router run equals). */
function assertIsolated(name: string, outcome: unknown): void {
  const o = outcome as Record<string, unknown>;
  switch (name) {
    case 'logs and log levels':
      assert.deepEqual(o['a'], ['warning:from-a', 'error:from-a', 'critical:from-a', 'alert:from-a', 'emergency:from-a']);
      assert.equal(o['aOnlyOwnSession'], true);
      assert.equal((o['b'] as string[]).filter((l) => l.endsWith(':from-b')).length, 8);
      assert.deepEqual((o['b'] as string[]).filter((l) => l.endsWith(':again')), ['error:again', 'critical:again', 'alert:again', 'emergency:again']);
      break;
    case 'ticks on the session stream, and stopping what another session started':
      assert.equal((o['stopB'] as { isError: boolean }).isError, true);
      assert.equal(o['ticksFromOwnSession'], true);
      assert.equal(o['bLogs'], 0);
      break;
    case 'notes are per session':
      assert.deepEqual(o['listA'], ['note://secret']);
      assert.deepEqual(o['listB'], []);
      assert.deepEqual(o['deniedB'], { code: -32002, says: true });
      assert.equal(o['invalidIsToolError'], true);
      break;
    case 'resource updates reach only the subscriber':
      assert.deepEqual(o, { a: ['note://n', 'note://marker'], b: ['note://n'] });
      break;
    case 'roots reach the server, and roots tools only roots clients':
      assert.equal(o['listedWith'], true);
      assert.equal(o['listedWithout'], false);
      assert.deepEqual(o['first'], { roots: [{ uri: 'file:///work/a', name: 'a' }], listChangedCount: 0 });
      assert.equal((o['second'] as { listChangedCount: number }).listChangedCount, 1);
      assert.equal(o['askedWithout'], 0);
      break;
    case 'capability-dependent tools, and sampling and elicitation of the calling client only':
      assert.ok(!(o['tools'] as { plain: string[] }).plain.includes('ask_llm'));
      assert.ok((o['tools'] as { sampler: string[] }).sampler.includes('ask_llm'));
      assert.ok((o['tools'] as { asker: string[] }).asker.includes('ask_user'));
      assert.deepEqual(o['asked'], [1, 0, 0, 1, 0]);
      break;
    case 'tasks run, report and stay in their session':
      assert.equal(o['listedA'], true);
      assert.equal(o['listedB'], 0);
      assert.equal(o['done'], 'completed');
      assert.equal((o['result'] as { sameSession: boolean }).sameSession, true);
      assert.equal(o['bStatuses'], 0);
      assert.equal(o['cancelled'], 'cancelled');
      break;
    default:
      assert.fail(`no isolation check for ${name}`);
  }
}
