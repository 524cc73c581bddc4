/**
 * Per-session isolation of the `stateful` example, hosted by a real agent (real nats-server) and driven
 * directly (no router) by independent SDK clients over Streamable HTTP: logs and log levels, notes,
 * subscriptions, timers, roots, capability-dependent tools and tasks each stay in their own session. The
 * router's session tests later run the same assertions through the mesh, with the same client helpers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { connectStatefulClient, structuredOf, textOf, type StatefulClient, type StatefulClientOptions } from '../../../test/harness/statefulClients.js';
import { startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

const STATEFUL = '@flotilla/examples/stateful';
/** The MCP "Resource not found" error code (spec 2025-11-25). */
const RESOURCE_NOT_FOUND = -32002;

interface WhoAmI {
  server: string;
  nodeId: string;
  sessionId: string;
  mcpSessionId: string | null;
  client: { name: string; version: string } | null;
  capabilities: Record<string, unknown>;
  logLevel: string | null;
}

let nats: NatsServerProcess;
let t: TestAgent;
const open: StatefulClient[] = [];

/** A client of the agent's `stateful` server, closed after the suite. */
async function connect(name: string, options: Omit<StatefulClientOptions, 'url' | 'name'> = {}): Promise<StatefulClient> {
  const c = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name, ...options });
  open.push(c);
  return c;
}

/** The code of a JSON-RPC error a request was answered with. */
async function rpcError(work: Promise<unknown>): Promise<{ code: number; message: string; data: unknown }> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof McpError, `expected a JSON-RPC error, got ${String(err)}`);
    return { code: err.code, message: err.message, data: err.data };
  }
  assert.fail('expected the request to fail');
}

async function toolNames(c: StatefulClient): Promise<string[]> {
  return (await c.client.listTools()).tools.map((tool) => tool.name).sort();
}

function load(): { inflight: number; queued: number; tasks: number } {
  return t.agent.health().load as { inflight: number; queued: number; tasks: number };
}

before(async () => {
  nats = await NatsServerProcess.start();
  t = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'stateful', module: STATEFUL }] });
});

after(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  await t?.agent.stop();
  await nats?.dispose();
});

describe('stateful example hosted by an agent, two clients', () => {
  test('each session is its own: node id, session id, clientInfo, capabilities and instructions', async () => {
    const a = await connect('client-a', { roots: [] });
    const b = await connect('client-b', { sampling: () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: '' } }) });
    const whoA = (await a.call<WhoAmI>('whoami')).structured;
    const whoB = (await b.call<WhoAmI>('whoami')).structured;
    assert.equal(whoA.server, 'stateful');
    assert.equal(whoA.nodeId, t.agent.nodeId, 'the agent passes its node id to the factory');
    assert.equal(whoB.nodeId, t.agent.nodeId);
    assert.notEqual(whoA.sessionId, whoB.sessionId);
    assert.equal(whoA.mcpSessionId, a.sessionId);
    assert.equal(whoB.mcpSessionId, b.sessionId);
    assert.deepEqual(whoA.client, { name: 'client-a', version: '1.0.0' });
    assert.deepEqual(whoB.client, { name: 'client-b', version: '1.0.0' });
    assert.deepEqual(whoA.capabilities, { roots: { listChanged: true } });
    assert.deepEqual(whoB.capabilities, { sampling: {} });
    assert.equal((await a.call<WhoAmI>('whoami')).structured.sessionId, whoA.sessionId, 'the same session answers again');
    assert.match(a.client.getInstructions() ?? '', /belongs to this MCP session only/);
    assert.deepEqual(a.client.getServerCapabilities()?.resources, { subscribe: true, listChanged: true });
    assert.deepEqual(a.client.getServerCapabilities()?.tasks, { list: {}, cancel: {}, requests: { tools: { call: {} } } });
  });

  test('log messages reach only their own session, each filtered by its own logging/setLevel', async () => {
    const a = await connect('log-a');
    const b = await connect('log-b');
    await a.client.setLoggingLevel('warning');
    const [burstA, burstB] = await Promise.all([a.call('log_burst', { tag: 'from-a' }), b.call('log_burst', { tag: 'from-b' })]);
    assert.deepEqual(burstA.structured.sent, ['warning', 'error', 'critical', 'alert', 'emergency']);
    assert.deepEqual(burstA.structured.suppressed, ['debug', 'info', 'notice']);
    assert.equal((burstB.structured.sent as string[]).length, 8, 'no level set: every message is sent');
    // Call-related messages travel on the call's own stream, so they are in before its result.
    assert.deepEqual(a.logs.map((l) => (l.data as { tag: string }).tag), Array(5).fill('from-a'));
    assert.deepEqual(a.logs.map((l) => l.level), ['warning', 'error', 'critical', 'alert', 'emergency']);
    assert.deepEqual(b.logs.map((l) => (l.data as { tag: string }).tag), Array(8).fill('from-b'));
    const sessionA = (await a.call<WhoAmI>('whoami')).structured;
    assert.ok(a.logs.every((l) => (l.data as { sessionId: string }).sessionId === sessionA.sessionId));

    await b.client.setLoggingLevel('error');
    await b.call('log_burst', { tag: 'again' });
    assert.deepEqual(b.logs.slice(8).map((l) => l.level), ['error', 'critical', 'alert', 'emergency']);
    assert.equal(a.logs.length, 5, 'B changing its level and logging again reaches A with nothing');
    assert.equal((await a.call<WhoAmI>('whoami')).structured.logLevel, 'warning');
    assert.equal((await b.call<WhoAmI>('whoami')).structured.logLevel, 'error');
  });

  test('ticks run only in the session that started them, on its own stream; stopping elsewhere says so', async () => {
    const a = await connect('ticks-a');
    const b = await connect('ticks-b');
    const stopB = await b.call('ticks_stop');
    assert.equal(stopB.isError, true);
    assert.match(textOf(stopB), /never started in this session/);

    const started = await a.call('ticks_start', { intervalMs: 20 });
    assert.deepEqual(started.structured, { started: true, intervalMs: 20 });
    const again = await a.call('ticks_start', { intervalMs: 20 });
    assert.equal(again.isError, true, 'a second start is refused, not a second timer');
    await a.waitFor('three ticks on A', (c) => c.logs.filter((l) => l.logger === 'ticks').length >= 3);
    const stopA = await a.call<{ stopped: boolean; ticks: number }>('ticks_stop');
    assert.equal(stopA.structured.stopped, true);
    assert.ok(stopA.structured.ticks >= 3);
    await a.waitFor('every tick sent before the stop', (c) => c.logs.filter((l) => l.logger === 'ticks').length === stopA.structured.ticks);
    const sessionA = (await a.call<WhoAmI>('whoami')).structured.sessionId;
    assert.ok(a.logs.filter((l) => l.logger === 'ticks').every((l) => (l.data as { sessionId: string }).sessionId === sessionA));
    const stoppedTwice = await a.call('ticks_stop');
    assert.equal(stoppedTwice.isError, true);
    assert.match(textOf(stoppedTwice), /not running in this session \(already stopped\)/);
    assert.equal(b.logs.length, 0, "B never receives A's ticks");
  });

  test("ticks honour the session's log level but still update its subscribed notes", async () => {
    const c = await connect('ticks-quiet');
    await c.client.setLoggingLevel('warning');
    await c.client.subscribeResource({ uri: 'note://watched' });
    await c.call('ticks_start', { intervalMs: 20 });
    await c.waitFor('three updates of the subscribed note', (x) => x.resourceUpdates.filter((u) => u === 'note://watched').length >= 3);
    const stop = await c.call<{ ticks: number }>('ticks_stop');
    assert.ok(stop.structured.ticks >= 3);
    assert.equal(c.logs.filter((l) => l.logger === 'ticks').length, 0, 'info ticks are below warning');
  });

  test('notes of one session are invisible and unreadable in another (-32002)', async () => {
    const a = await connect('notes-a');
    const b = await connect('notes-b');
    const put = await a.call('note_put', { name: 'secret', text: 'for A only' });
    assert.deepEqual(put.structured, { uri: 'note://secret', created: true, version: 1 });
    assert.deepEqual((await a.client.listResources()).resources.map((r) => r.uri), ['note://secret']);
    assert.deepEqual((await b.client.listResources()).resources, []);
    const read = await a.client.readResource({ uri: 'note://secret' });
    assert.deepEqual(read.contents, [{ uri: 'note://secret', mimeType: 'text/plain', text: 'for A only' }]);
    const denied = await rpcError(b.client.readResource({ uri: 'note://secret' }));
    assert.equal(denied.code, RESOURCE_NOT_FOUND);
    assert.match(denied.message, /Resource not found: note:\/\/secret/);
    assert.deepEqual(denied.data, { uri: 'note://secret' });
    await a.waitFor('list_changed for its new note', (c) => c.counts.resourceListChanged === 1);

    const putB = await b.call('note_put', { name: 'secret', text: 'B has its own' });
    assert.equal(putB.structured.created, true, "B's note of the same name is a new note");
    assert.deepEqual((await b.client.readResource({ uri: 'note://secret' })).contents, [{ uri: 'note://secret', mimeType: 'text/plain', text: 'B has its own' }]);
    assert.deepEqual((await a.client.readResource({ uri: 'note://secret' })).contents, [{ uri: 'note://secret', mimeType: 'text/plain', text: 'for A only' }]);
    const update = await a.call('note_put', { name: 'secret', text: 'A again' });
    assert.deepEqual(update.structured, { uri: 'note://secret', created: false, version: 2 });
    await b.waitFor('list_changed for its own note', (c) => c.counts.resourceListChanged === 1);
    // A's second note marks the end of A's standalone stream so far: no list_changed of B's note before it.
    await a.call('note_put', { name: 'second', text: 'x' });
    await a.waitFor('list_changed for the second note', (c) => c.counts.resourceListChanged === 2);
    assert.equal(b.counts.resourceListChanged, 1);

    const invalid = await a.call('note_put', { name: 'not a name!', text: 'x' });
    assert.equal(invalid.isError, true, 'invalid arguments are a tool execution error (SEP-1303)');
    assert.match(textOf(invalid), /Input validation error: Invalid arguments for tool note_put/);
    const unknownScheme = await rpcError(a.client.readResource({ uri: 'file:///etc/passwd' }));
    assert.equal(unknownScheme.code, -32602);
  });

  test('resource updates reach only the session that subscribed', async () => {
    const a = await connect('sub-a');
    const b = await connect('sub-b');
    await a.client.subscribeResource({ uri: 'note://n' });
    await a.call('note_put', { name: 'n', text: 'a1' });
    await a.waitFor("A's update", (c) => c.resourceUpdates.length === 1);
    await b.call('note_put', { name: 'n', text: 'b1' });
    await b.client.subscribeResource({ uri: 'note://n' });
    await b.call('note_put', { name: 'n', text: 'b2' });
    await b.waitFor("B's update after it subscribed", (c) => c.resourceUpdates.length === 1);
    assert.deepEqual(b.resourceUpdates, ['note://n'], "B's put before it subscribed told no one");

    await a.client.unsubscribeResource({ uri: 'note://n' });
    await a.call('note_put', { name: 'n', text: 'a2' });
    // A marker on A's standalone stream after that put: an update of n would have come before it.
    await a.client.subscribeResource({ uri: 'note://marker' });
    await a.call('note_put', { name: 'marker', text: 'm' });
    await a.waitFor('the marker update', (c) => c.resourceUpdates.includes('note://marker'));
    assert.deepEqual(a.resourceUpdates, ['note://n', 'note://marker'], 'no update after unsubscribing, none of B');
    assert.deepEqual(b.resourceUpdates, ['note://n']);

    const wrong = await rpcError(a.client.subscribeResource({ uri: 'file:///tmp/x' }));
    assert.equal(wrong.code, -32602);
    assert.match(wrong.message, /only note:\/\/<name> resources can be subscribed to/);
  });

  test('roots_show is offered only to a client with roots, shows its roots and counts its list_changed', async () => {
    const withRoots = await connect('roots-yes', { roots: [{ uri: 'file:///work/a', name: 'a' }] });
    const without = await connect('roots-no');
    assert.ok((await toolNames(withRoots)).includes('roots_show'));
    assert.ok(!(await toolNames(without)).includes('roots_show'));
    const first = await withRoots.call('roots_show');
    assert.deepEqual(first.structured, { roots: [{ uri: 'file:///work/a', name: 'a' }], listChangedCount: 0 });
    assert.equal(withRoots.counts.rootsRequests, 1);

    await withRoots.setRoots([{ uri: 'file:///work/a', name: 'a' }, { uri: 'file:///work/b', name: 'b' }]);
    await waitUntil(async () => (await withRoots.call('roots_show')).structured.listChangedCount === 1, 10_000, 'roots list_changed counted');
    const second = await withRoots.call('roots_show');
    assert.deepEqual(second.structured.roots, [{ uri: 'file:///work/a', name: 'a' }, { uri: 'file:///work/b', name: 'b' }]);

    const refused = await without.call('roots_show');
    assert.equal(refused.isError, true, 'a tool not offered to this client cannot be called either');
    assert.match(textOf(refused), /roots_show disabled/);
    assert.equal(without.counts.rootsRequests, 0);
  });

  test('ask_llm and ask_user are offered per declared capability and ask that client only', async () => {
    const sampler = await connect('sampler', { sampling: (p) => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: `echo: ${JSON.stringify(p.messages[0]?.content)}` } }) });
    const asker = await connect('asker', { elicitation: () => ({ action: 'accept', content: { name: 'Ada' } }) });
    const both = await connect('both', {
      sampling: () => ({ model: 'm2', role: 'assistant', content: { type: 'text', text: 'ok' } }),
      elicitation: () => ({ action: 'decline' }),
    });
    const plain = await connect('plain');
    const base = ['log_burst', 'long_job', 'note_put', 'ticks_start', 'ticks_stop', 'whoami'];
    assert.deepEqual(await toolNames(plain), base);
    assert.deepEqual(await toolNames(sampler), [...base, 'ask_llm'].sort());
    assert.deepEqual(await toolNames(asker), [...base, 'ask_user'].sort());
    assert.deepEqual(await toolNames(both), [...base, 'ask_llm', 'ask_user'].sort());

    const llm = await sampler.call('ask_llm', { prompt: 'hi' });
    assert.equal(llm.structured.model, 'test-model');
    assert.match(String(llm.structured.text), /echo: .*hi/);
    const user = await asker.call('ask_user');
    assert.deepEqual(user.structured, { action: 'accept', greeting: 'hello, Ada', name: 'Ada' });
    assert.equal((await both.call('ask_user')).structured.greeting, 'the user chose to decline');
    assert.equal(sampler.counts.samplingRequests, 1);
    assert.equal(asker.counts.elicitationRequests, 1);
    assert.equal(both.counts.samplingRequests, 0);
    const notOffered = await plain.call('ask_llm', { prompt: 'hi' });
    assert.equal(notOffered.isError, true);
    assert.match(textOf(notOffered), /ask_llm disabled/);
  });
});

describe('tasks of the stateful example through the agent', () => {
  test('a task-augmented call answers at once; the task runs to completion, polled with tasks/get, and its result comes from tasks/result', async () => {
    const a = await connect('task-a');
    const created = await a.startTask('long_job', { steps: 4, stepMs: 50 }, 60_000);
    assert.equal(created.task.status, 'working');
    assert.equal(created.task.ttl, 60_000);
    assert.equal(created.task.pollInterval, 100);
    const taskId = created.task.taskId;
    assert.ok((await a.client.experimental.tasks.listTasks()).tasks.some((x) => x.taskId === taskId));
    const done = await a.pollTask(taskId);
    assert.equal(done.status, 'completed');
    const result = await a.taskResult(taskId);
    const who = (await a.call<WhoAmI>('whoami')).structured;
    assert.deepEqual(structuredOf(result), { steps: 4, stepMs: 50, sessionId: who.sessionId });
    assert.equal(textOf(result), 'long_job done: 4 steps of 50 ms');
    // Status notifications on the session's stream: a working status per step but the last, then completed.
    await a.waitFor('the completed status', (c) => c.taskStatuses.some((s) => s.taskId === taskId && s.status === 'completed'));
    const mine = a.taskStatuses.filter((s) => s.taskId === taskId);
    assert.deepEqual(mine.map((s) => s.status), ['working', 'working', 'working', 'completed']);
    assert.deepEqual(mine.slice(0, 3).map((s) => s.statusMessage), ['step 1 of 4', 'step 2 of 4', 'step 3 of 4']);
    await waitUntil(() => load().tasks === 0, 10_000, 'the finished task to leave the load');
  });

  test("a task of one session is not listable, gettable, readable or cancellable in another", async () => {
    const a = await connect('owner');
    const b = await connect('stranger');
    const { task } = await a.startTask('long_job', { steps: 200, stepMs: 50 });
    assert.deepEqual((await b.client.experimental.tasks.listTasks()).tasks, []);
    assert.equal((await rpcError(b.client.experimental.tasks.getTask(task.taskId))).code, -32602);
    assert.equal((await rpcError(b.taskResult(task.taskId))).code, -32602);
    assert.equal((await rpcError(b.client.experimental.tasks.cancelTask(task.taskId))).code, -32602);
    assert.equal((await a.client.experimental.tasks.getTask(task.taskId)).status, 'working', "B's cancel did not touch A's task");
    assert.equal(b.taskStatuses.length, 0, "A's task statuses never reach B");
    await a.client.experimental.tasks.cancelTask(task.taskId);
  });

  test('a running task can be cancelled: it stops, says so in a status notification, and leaves the load', async () => {
    const a = await connect('cancel-a');
    const { task } = await a.startTask('long_job', { steps: 1000, stepMs: 50 });
    await a.waitFor('the task working', (c) => c.taskStatuses.some((s) => s.taskId === task.taskId && s.status === 'working'));
    await waitUntil(() => load().tasks === 1 && load().inflight === 0, 10_000, 'the task counted as open work, not as a running call');
    const metrics = await (await fetch(`${t.agent.url}/metrics`)).text();
    assert.match(metrics, /^flotilla_agent_tasks\{server="stateful"\} 1$/m);
    const cancelled = await a.client.experimental.tasks.cancelTask(task.taskId);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal((await a.pollTask(task.taskId)).status, 'cancelled');
    await a.waitFor('the cancelled status', (c) => c.taskStatuses.some((s) => s.taskId === task.taskId && s.status === 'cancelled'));
    // The job stopped at once: the cancelled status is the last word about this task.
    const statuses = a.taskStatuses.filter((s) => s.taskId === task.taskId);
    assert.equal(statuses.at(-1)?.status, 'cancelled');
    assert.ok(statuses.length < 1000);
    await waitUntil(() => load().tasks === 0, 10_000, 'the cancelled task to leave the load');
    assert.equal((await rpcError(a.client.experimental.tasks.cancelTask(task.taskId))).code, -32602, 'a terminal task cannot be cancelled again');
  });

  test('a failing job ends its task failed with an isError result', async () => {
    const a = await connect('fail-a');
    const { task } = await a.startTask('long_job', { steps: 5, stepMs: 10, failAt: 2 });
    assert.equal((await a.pollTask(task.taskId)).status, 'failed');
    const result = await a.taskResult(task.taskId);
    assert.equal(result.isError, true);
    assert.match(textOf(result), /failed at step 2 of 5/);
    await waitUntil(() => load().tasks === 0, 10_000, 'the failed task to leave the load');
  });

  test('long_job called without a task is an isError result, and counts as no task', async () => {
    const a = await connect('no-task');
    const tools = (await a.client.listTools()).tools;
    assert.deepEqual(tools.find((x) => x.name === 'long_job')?.execution, { taskSupport: 'required' });
    const result = await a.client.request({ method: 'tools/call', params: { name: 'long_job', arguments: {} } }, CallToolResultSchema);
    assert.equal(result.isError, true);
    assert.match(textOf(result), /requires task augmentation/);
    assert.equal(load().tasks, 0);
  });

  test('a tasks/result whose client goes away is cancelled on the server; the task runs on', async () => {
    const a = await connect('abandon-a');
    const { task } = await a.startTask('long_job', { steps: 30, stepMs: 50 });
    const gone = new AbortController();
    const waiting = fetch(`${t.agent.url}/mcp/stateful`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': a.sessionId!, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'abandoned-result', method: 'tasks/result', params: { taskId: task.taskId } }),
      signal: gone.signal,
    }).catch(() => undefined);
    await waitUntil(() => a.taskStatuses.some((s) => s.taskId === task.taskId && s.statusMessage === 'step 2 of 30'), 10_000, 'the task under way');
    gone.abort();
    await waiting;
    await t.logs.waitFor((l) => l.msg === 'client went away; cancelling its tasks/result (the task runs on)' && l.requestId === 'abandoned-result');
    assert.equal((await a.pollTask(task.taskId)).status, 'completed');
    assert.equal(textOf(await a.taskResult(task.taskId)), 'long_job done: 30 steps of 50 ms');
  });
});

describe('task follow-ups and admission control', () => {
  test('with every slot taken, tasks/get, tasks/list and tasks/result still pass while new calls (task-augmented too) are refused busy', async () => {
    const busy = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'stateful', module: STATEFUL }], capacity: 1, maxQueue: 0 });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const client = await connectStatefulClient({
      url: `${busy.agent.url}/mcp/stateful`,
      name: 'busy-client',
      elicitation: async () => {
        await released;
        return { action: 'accept', content: { name: 'Grace' } };
      },
    });
    try {
      const { task } = await client.startTask('long_job', { steps: 2, stepMs: 10 });
      assert.equal((await client.pollTask(task.taskId)).status, 'completed');
      // ask_user holds the node's only slot until the elicitation is answered.
      const holding = client.call('ask_user');
      await client.waitFor('the elicitation request', (c) => c.counts.elicitationRequests === 1);
      assert.equal((busy.agent.health().load as { inflight: number }).inflight, 1);

      assert.equal((await client.client.experimental.tasks.getTask(task.taskId)).status, 'completed');
      assert.deepEqual((await client.client.experimental.tasks.listTasks()).tasks.map((x) => x.taskId), [task.taskId]);
      assert.equal(textOf(await client.taskResult(task.taskId)), 'long_job done: 2 steps of 10 ms');
      assert.equal((await rpcError(client.call('whoami'))).code, FlotillaErrorCode.NodeBusy);
      assert.equal((await rpcError(client.startTask('long_job', { steps: 1, stepMs: 1 }))).code, FlotillaErrorCode.NodeBusy);

      release();
      assert.equal((await holding).structured.greeting, 'hello, Grace');
    } finally {
      release();
      await client.close();
      await busy.agent.stop();
    }
  });
});

describe('draining with open tasks', () => {
  test('a draining agent creates no new task, still answers follow-ups, and waits for open tasks', async () => {
    const d = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'stateful', module: STATEFUL }] });
    const client = await connectStatefulClient({ url: `${d.agent.url}/mcp/stateful`, name: 'drain-client' });
    try {
      const { task } = await client.startTask('long_job', { steps: 20, stepMs: 50 });
      const drained = d.agent.drain(60_000);
      await waitUntil(() => d.agent.health().phase === 'draining', 10_000, 'draining');
      const refused = await rpcError(client.startTask('long_job', { steps: 1, stepMs: 1 }));
      assert.equal(refused.code, FlotillaErrorCode.NodeDraining);
      // Well into the drain, the session is still served: the agent waits for the open task.
      await client.waitFor('step 5 of the task', (c) => c.taskStatuses.some((s) => s.taskId === task.taskId && s.statusMessage === 'step 5 of 20'));
      assert.equal((await client.client.experimental.tasks.getTask(task.taskId)).taskId, task.taskId);
      assert.equal(d.agent.health().phase, 'draining');
      await drained;
      const stopped = d.logs.find((l) => l.msg === 'agent stopped');
      assert.equal(stopped?.reason, 'drained', 'the drain ended because the task ended, not at the grace period');
      const draining = d.logs.find((l) => l.msg === 'draining');
      assert.equal(draining?.tasks, 1);
    } finally {
      await client.close();
      await d.agent.stop();
    }
  });
});
