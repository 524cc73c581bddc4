/**
 * A stdio server mounted with `sessions: per-session` on a real agent: each client session gets a real
 * process of its own (the example `worker`) from a bounded pool kept warm. Real SDK clients over HTTP,
 * real nats-server. What is proved: sessions never share or reuse a process; processes are started
 * ahead of demand; the pool is bounded with a clear refusal; a client's own capabilities work (logging,
 * sampling) and reach only it; a process that dies ends only its session; drain stops processes after
 * their calls finished.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { WORKER_BIN, processAlive } from '../../../test/harness/mounts.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

let nats: NatsServerProcess;
let t: TestAgent;

interface PoolReport {
  serving: boolean;
  mount: { idle: number; busy: number; starting: number; max: number; spawns: number };
}

function pool(): PoolReport['mount'] {
  return (t.agent.health().servers as Record<string, PoolReport>).worker!.mount;
}

/** Waits until only the agent's own probe holds a process (the sessions of the last test are gone). */
async function onlyProbeLeft(): Promise<void> {
  await waitUntil(() => pool().busy === 1, 15_000, 'the processes of closed sessions stopped');
}

async function pid(client: Awaited<ReturnType<typeof connectClient>>): Promise<number> {
  return ((await client.callTool({ name: 'whoami' })).structuredContent as { pid: number }).pid;
}

before(async () => {
  nats = await NatsServerProcess.start();
  // max 4: the agent's own probe session holds one, so three client sessions fit.
  t = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'worker', command: process.execPath, args: [WORKER_BIN], sessions: 'per-session', pool: { warm: 1, max: 4 } }] });
});

after(async () => {
  await t?.agent.stop();
  await nats?.dispose();
});

describe('a process per client session', () => {
  test('each session has its own process, warm before the session opened, stopped with it and never reused', async () => {
    await waitUntil(() => pool().idle === 1, 20_000, 'a warm process');
    const warmPid = Number([...t.logs.lines].reverse().find((l) => l.msg === 'stdio server process started')?.pid);
    const a = await connectClient(t.agent, 'worker');
    const b = await connectClient(t.agent, 'worker');
    const [pa, pb] = [await pid(a), await pid(b)];
    assert.equal(pa, warmPid, 'the first session took the process that was already running');
    assert.notEqual(pa, pb);
    await a.callTool({ name: 'remember', arguments: { value: 'only-a' } });
    assert.equal(((await b.callTool({ name: 'recall' })).structuredContent as { remembered: unknown }).remembered, null, "B does not see A's state");
    await closeClient(a);
    await waitUntil(() => !processAlive(pa), 15_000, "A's process stopped with its session");
    const c = await connectClient(t.agent, 'worker');
    const pc = await pid(c);
    assert.ok(pc !== pa && pc !== pb, 'a new session gets a new process');
    await Promise.all([closeClient(b), closeClient(c)]);
    await onlyProbeLeft();
  });

  test('the pool is bounded: past pool.max, initialize gets 503 SessionLimit naming the pool, until a session ends', async () => {
    const clients = [await connectClient(t.agent, 'worker'), await connectClient(t.agent, 'worker'), await connectClient(t.agent, 'worker')];
    await waitUntil(() => pool().busy === 4, 10_000, 'probe and three sessions hold every process');
    const refused = await fetch(`${t.agent.url}/mcp/worker`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(refused.status, 503);
    const body = (await refused.json()) as { id: number; error: { code: number; message: string; data: { limit: number } } };
    assert.equal(body.id, 9);
    assert.equal(body.error.code, FlotillaErrorCode.SessionLimit);
    assert.match(body.error.message, /runs a process per session and all 4 are taken \(pool\.max\)/);
    await closeClient(clients.pop()!);
    await waitUntil(() => pool().busy < 4, 15_000, 'a process freed');
    const next = await connectClient(t.agent, 'worker');
    assert.ok((await pid(next)) > 0);
    await Promise.all([...clients, next].map((c) => closeClient(c)));
    await onlyProbeLeft();
  });

  test("a client's own session capabilities work, and what its process sends reaches it alone", async () => {
    let sampled = 0;
    const a = await connectClient(t.agent, 'worker', { sampling: {} });
    const b = await connectClient(t.agent, 'worker');
    const logs: Record<string, unknown[]> = { a: [], b: [] };
    a.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.a!.push(n.params.data));
    b.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.b!.push(n.params.data));
    a.setRequestHandler(CreateMessageRequestSchema, () => {
      sampled += 1;
      return { role: 'assistant', model: 'client-a-model', content: { type: 'text', text: 'x' } };
    });
    try {
      assert.deepEqual(a.getServerCapabilities()?.logging, {}, 'logging is offered: the session is the client\'s own');
      await a.setLoggingLevel('info');
      await a.callTool({ name: 'chatty', arguments: { tag: 'for-a' } });
      await waitUntil(() => logs.a!.length === 1, 10_000, "A's log message");
      assert.deepEqual((logs.a![0] as { tag: string }).tag, 'for-a');
      const asked = await a.callTool({ name: 'ask_model' });
      assert.equal((asked.structuredContent as { model: string }).model, 'client-a-model');
      assert.equal(sampled, 1);
      await b.callTool({ name: 'whoami' });
      assert.deepEqual(logs.b, [], "nothing of A's session reached B");
    } finally {
      await Promise.all([closeClient(a), closeClient(b)]);
    }
    await onlyProbeLeft();
  });

  test('a process that dies ends its own session only', async () => {
    const [a, b] = [await connectClient(t.agent, 'worker'), await connectClient(t.agent, 'worker')];
    const pa = await pid(a);
    process.kill(pa, 'SIGKILL');
    await t.logs.waitFor((l) => l.msg === 'mounted server session ended; ending the client session' && l.pid === pa);
    await assert.rejects(a.callTool({ name: 'whoami' }), "A's session ended with its process");
    assert.ok((await pid(b)) > 0, 'B is unaffected');
    await Promise.all([closeClient(a), closeClient(b)]);
    await onlyProbeLeft();
  });

  test('drain lets a running call finish, then stops every process', async () => {
    const client = await connectClient(t.agent, 'worker');
    const p = await pid(client);
    const running = client.callTool({ name: 'work', arguments: { steps: 10, stepMs: 100 } });
    await waitUntil(() => t.agent.health().load !== undefined && (t.agent.health().load as { inflight: number }).inflight === 1, 10_000, 'the call runs');
    const drained = t.agent.drain(20_000);
    const result = await running;
    assert.deepEqual(result.structuredContent, { pid: p, steps: 10 }, 'the call finished during the drain');
    await drained;
    const spawned = t.logs.lines.filter((l) => l.msg === 'stdio server process started').map((l) => Number(l.pid));
    await waitUntil(() => spawned.every((x) => !processAlive(x)), 15_000, 'no process of the mount left');
    await closeClient(client);
  });
});
