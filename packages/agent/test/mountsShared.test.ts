/**
 * A stdio server mounted with `sessions: shared` (the default) on a real agent: one real process (the
 * example `worker`) serves many client sessions over its one MCP session. Real SDK clients over HTTP,
 * real nats-server. What is proved: request ids and progress tokens of different clients never mix; what
 * the process cannot share per client is refused or not offered, and nothing of one session reaches
 * another; a process that dies ends the sessions and restarts; what a mounted process sends is checked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { WORKER_BIN, processAlive } from '../../../test/harness/mounts.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

let nats: NatsServerProcess;
let t: TestAgent;

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
/** A stdio "server" that writes lines that are not MCP and never answers. */
const GARBAGE = "process.stdout.write('this is not JSON-RPC\\n'); setInterval(() => {}, 1000);";
/** A stdio "server" that answers initialize with something that is not an initialize result. */
const BAD_INIT = "process.stdin.on('data', (d) => { const m = JSON.parse(String(d).split('\\n')[0]); process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { hello: 'world' } }) + '\\n'); });";

function initialize(server: string): Promise<Response> {
  return fetch(`${t.agent.url}/mcp/${server}`, {
    method: 'POST',
    headers: MCP_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
}

interface MountReport {
  serving: boolean;
  mount: { pid?: number; inflight: number; attached: number; state: string; consecutiveFailures: number; lastExit?: string };
}

function report(server: string): MountReport {
  return (t.agent.health().servers as Record<string, MountReport>)[server]!;
}

before(async () => {
  nats = await NatsServerProcess.start();
  t = await startTestAgent({
    natsUrl: nats.url,
    servers: [
      { name: 'worker', command: process.execPath, args: [WORKER_BIN] },
      { name: 'restarting', command: process.execPath, args: [WORKER_BIN], restart: { initialDelayMs: 5000, maxDelayMs: 5000 } },
      { name: 'missing', command: '/nonexistent/flotilla-test-command' },
      { name: 'garbage', command: process.execPath, args: ['-e', GARBAGE], startupTimeoutMs: 1500 },
      { name: 'badinit', command: process.execPath, args: ['-e', BAD_INIT] },
    ],
  });
});

after(async () => {
  await t?.agent.stop();
  await nats?.dispose();
});

describe('a shared stdio process', () => {
  test('clients whose request ids and progress tokens are the same get their own answers and progress only', async () => {
    const [a, b] = await Promise.all([connectClient(t.agent, 'worker'), connectClient(t.agent, 'worker')]);
    try {
      // Both clients number their requests from the same start and send them at once.
      const calls = (client: typeof a, steps: number) =>
        Array.from({ length: 5 }, async () => {
          let progress = 0;
          const r = await client.callTool({ name: 'work', arguments: { steps, stepMs: 20 } }, undefined, { onprogress: () => void progress++ });
          return { steps: (r.structuredContent as { steps: number }).steps, progress };
        });
      const [fromA, fromB] = await Promise.all([Promise.all(calls(a, 3)), Promise.all(calls(b, 4))]);
      assert.deepEqual(fromA, Array(5).fill({ steps: 3, progress: 3 }));
      assert.deepEqual(fromB, Array(5).fill({ steps: 4, progress: 4 }));
      const [pa, pb] = await Promise.all([a.callTool({ name: 'whoami' }), b.callTool({ name: 'whoami' })]);
      assert.equal((pa.structuredContent as { pid: number }).pid, (pb.structuredContent as { pid: number }).pid, 'one process serves both');
    } finally {
      await Promise.all([closeClient(a), closeClient(b)]);
    }
  });

  test("a cancelled call is cancelled for its client only: the other client's call with the same id runs on", async () => {
    const [a, b] = await Promise.all([connectClient(t.agent, 'worker'), connectClient(t.agent, 'worker')]);
    try {
      const abort = new AbortController();
      const cancelled = a.callTool({ name: 'work', arguments: { steps: 200, stepMs: 20 } }, undefined, { signal: abort.signal });
      const kept = b.callTool({ name: 'work', arguments: { steps: 40, stepMs: 20 } });
      await waitUntil(() => report('worker').mount.inflight === 2, 10_000, 'both calls on the process');
      abort.abort();
      await assert.rejects(cancelled);
      await waitUntil(() => report('worker').mount.inflight === 1, 10_000, "A's call gone from the process, B's still there");
      assert.deepEqual((await kept).structuredContent, { pid: report('worker').mount.pid, steps: 40 });
    } finally {
      await Promise.all([closeClient(a), closeClient(b)]);
    }
  });

  test('what one process cannot keep per client is not offered, refused, or kept from clients', async () => {
    let sampled = 0;
    const a = await connectClient(t.agent, 'worker', { sampling: {} });
    const b = await connectClient(t.agent, 'worker');
    const logsSeen: unknown[] = [];
    for (const c of [a, b]) c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logsSeen.push(n.params));
    a.setRequestHandler(CreateMessageRequestSchema, () => {
      sampled += 1;
      return { role: 'assistant', model: 'm', content: { type: 'text', text: 'x' } };
    });
    try {
      const caps = a.getServerCapabilities() ?? {};
      assert.equal(caps.logging, undefined, 'no per-session log level offered');
      assert.equal(caps.tasks, undefined, 'no tasks offered');
      assert.deepEqual(caps.tools, { listChanged: true });
      await assert.rejects(a.setLoggingLevel('debug'), (err: unknown) => err instanceof McpError && err.code === -32601 && /logging\/setLevel is not available on worker.*sessions: per-session/.test(err.message));
      const chatty = await a.callTool({ name: 'chatty', arguments: { tag: 'private-tag' } });
      assert.notEqual(chatty.isError, true);
      const line = await t.logs.waitFor((l) => l.msg === 'log message from the shared stdio process' && JSON.stringify(l.data).includes('private-tag'));
      assert.equal(line.server, 'worker');
      const asked = await a.callTool({ name: 'ask_model' });
      assert.equal(asked.isError, true);
      assert.match(JSON.stringify(asked.content), /sampling\/createMessage is not available: this process is shared/);
      assert.equal(sampled, 0, 'the process never reached a client with its request');
      await b.callTool({ name: 'whoami' }); // anything in flight for either client has been delivered by now
      assert.deepEqual(logsSeen, [], 'no log message of the process reached a client');
    } finally {
      await Promise.all([closeClient(a), closeClient(b)]);
    }
  });

  test('a process that dies ends the sessions on it; new sessions get ServerUnavailable until it is back', async () => {
    const client = await connectClient(t.agent, 'restarting');
    const pid = report('restarting').mount.pid!;
    assert.ok(pid > 0 && processAlive(pid));
    process.kill(pid, 'SIGKILL');
    await t.logs.waitFor((l) => l.server === 'restarting' && l.msg === 'stdio server process exited; restarting');
    await assert.rejects(client.callTool({ name: 'whoami' }), 'the session ended with its process');
    const refused = await initialize('restarting');
    assert.equal(refused.status, 503);
    const body = (await refused.json()) as { error: { code: number; message: string } };
    assert.equal(body.error.code, FlotillaErrorCode.ServerUnavailable);
    assert.match(body.error.message, /server restarting on node .* is unavailable: its process failed 1 time\(s\) in a row \(process \d+ exited after serving \d+ ms\); next start in \d+ ms/);
    await waitUntil(() => report('restarting').serving && report('restarting').mount.pid !== undefined && report('restarting').mount.pid !== pid, 30_000, 'restarted');
    const again = await connectClient(t.agent, 'restarting');
    assert.notEqual(((await again.callTool({ name: 'whoami' })).structuredContent as { pid: number }).pid, pid);
    await closeClient(again);
    await closeClient(client);
  });

  test('a command that cannot start, one that writes what is not MCP, and one that answers initialize wrongly are NOT_SERVING and say why', async () => {
    const missing = await t.logs.waitFor((l) => l.server === 'missing' && l.msg === 'stdio server failed to start; restarting');
    assert.match(String(missing.reason), /cannot start \/nonexistent\/flotilla-test-command: no such command/);
    const garbage = await t.logs.waitFor((l) => l.server === 'garbage' && l.msg === 'stdio server failed to start; restarting');
    assert.match(String(garbage.reason), /no answer to initialize within 1500 ms/);
    await t.logs.waitFor((l) => l.server === 'garbage' && l.msg === 'stdio server sent something that is not MCP, or its pipe failed');
    const badinit = await t.logs.waitFor((l) => l.server === 'badinit' && l.msg === 'stdio server failed to start; restarting');
    assert.match(String(badinit.reason), /invalid initialize result: protocolVersion: .*serverInfo/s);
    for (const server of ['missing', 'garbage', 'badinit']) {
      assert.equal(report(server).serving, false, server);
      const r = await initialize(server);
      assert.equal(r.status, 503, server);
      assert.equal(((await r.json()) as { error: { code: number } }).error.code, FlotillaErrorCode.ServerUnavailable);
    }
    assert.equal(t.agent.health().ready, true, 'broken mounts leave the node ready for its other servers');
  });
});
