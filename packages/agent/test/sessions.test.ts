/**
 * Limits on MCP sessions of a real agent (real nats-server, real SDK clients over HTTP): the node-wide
 * cap (503 with JSON-RPC -32016 SessionLimit, places given back on DELETE, on idle expiry and when an
 * open fails), idle expiry that waits for a session's open tasks, and the metrics that count both.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { parseExposition } from '../../../test/harness/prometheusText.js';
import { connectStatefulClient } from '../../../test/harness/statefulClients.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

const STATEFUL = '@flotilla/examples/stateful';
const ECHO = '@flotilla/examples/echo';
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

let nats: NatsServerProcess;

/** A raw `initialize` POST, as a client opening a session sends it. */
function initialize(agentUrl: string, server: string, id: string | number, headers: Record<string, string> = MCP_HEADERS): Promise<Response> {
  return fetch(`${agentUrl}/mcp/${server}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
}

async function metric(t: TestAgent, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${t.agent.url}/metrics`)).text();
  return parseExposition(text).valueOrZero(name, labels);
}

function sessions(t: TestAgent): { open: number; limit: number } {
  return t.agent.health().sessions as { open: number; limit: number };
}

before(async () => {
  nats = await NatsServerProcess.start();
});

after(async () => {
  await nats?.dispose();
});

describe('the session cap', () => {
  let t: TestAgent;
  before(async () => {
    t = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: ECHO }, { name: 'stateful', module: STATEFUL }], maxSessions: 2 });
  });
  after(async () => {
    await t?.agent.stop();
  });

  test('counts every hosted server together and refuses initialize beyond it with 503 and SessionLimit', async () => {
    assert.deepEqual(sessions(t), { open: 0, limit: 2 }, "the agent's own probe sessions are not counted");
    assert.equal(await metric(t, 'flotilla_agent_session_limit'), 2);
    assert.equal(await metric(t, 'flotilla_agent_sessions_refused_total', { server: 'stateful' }), 0);
    const echo = await connectClient(t.agent, 'echo');
    const stateful = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name: 'holder' });
    try {
      assert.deepEqual(sessions(t), { open: 2, limit: 2 });
      const refused = await initialize(t.agent.url, 'stateful', 'init-3');
      assert.equal(refused.status, 503);
      assert.match(refused.headers.get('content-type') ?? '', /application\/json/);
      const body = (await refused.json()) as { jsonrpc: string; id: unknown; error: { code: number; message: string; data: Record<string, unknown> } };
      assert.equal(body.jsonrpc, '2.0');
      assert.equal(body.id, 'init-3');
      assert.equal(body.error.code, FlotillaErrorCode.SessionLimit);
      assert.match(body.error.message, new RegExp(`node ${t.agent.nodeId} has reached its limit of 2 MCP sessions \\(all hosted servers together\\)`));
      assert.deepEqual(body.error.data, { nodeId: t.agent.nodeId, limit: 2, open: 2, retryable: true });
      // An SDK client sees the refusal as the failed HTTP request it is, with the reason in it.
      await assert.rejects(connectClient(t.agent, 'echo'), (err: Error & { code?: number }) => {
        assert.equal(err.code, 503);
        assert.match(err.message, /"code":-32016.*limit of 2 MCP sessions/);
        return true;
      });
      assert.equal(await metric(t, 'flotilla_agent_sessions_refused_total', { server: 'stateful' }), 1);
      assert.equal(await metric(t, 'flotilla_agent_sessions_refused_total', { server: 'echo' }), 1);
      assert.equal(await metric(t, 'flotilla_agent_sessions', { server: 'echo' }), 1);
      assert.equal(await metric(t, 'flotilla_agent_sessions', { server: 'stateful' }), 1);
      await t.logs.waitFor((l) => l.msg === 'session refused: the node holds its maximum of MCP sessions' && l.server === 'stateful');

      // Ending a session (DELETE) gives its place back.
      await stateful.close();
      await waitUntil(() => sessions(t).open === 1, 10_000, 'the closed session to give its place back');
      const again = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name: 'next' });
      assert.equal((await again.call('whoami')).structured.server, 'stateful');
      assert.deepEqual(sessions(t), { open: 2, limit: 2 });
      await again.close();
    } finally {
      await closeClient(echo);
      await stateful.close();
    }
    await waitUntil(() => sessions(t).open === 0, 10_000, 'every session closed');
    assert.equal(await metric(t, 'flotilla_agent_sessions', { server: 'stateful' }), 0);
  });

  test('an initialize the transport refuses takes no place', async () => {
    const wrongAccept = await initialize(t.agent.url, 'stateful', 1, { 'content-type': 'application/json', accept: 'application/json' });
    assert.equal(wrongAccept.status, 406);
    assert.equal(sessions(t).open, 0);
    const first = await connectClient(t.agent, 'echo');
    const second = await connectClient(t.agent, 'echo');
    assert.equal(sessions(t).open, 2, 'both places are still there');
    await closeClient(first);
    await closeClient(second);
    await waitUntil(() => sessions(t).open === 0, 10_000, 'sessions closed');
  });
});

describe('idle expiry', () => {
  let t: TestAgent;
  before(async () => {
    t = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'stateful', module: STATEFUL }], maxSessions: 1, sessionIdleTimeoutMs: 300 });
  });
  after(async () => {
    await t?.agent.stop();
  });

  test('an abandoned session expires, is counted, and gives its place back', async () => {
    assert.equal(await metric(t, 'flotilla_agent_sessions_expired_total', { server: 'stateful' }), 0);
    const gone = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name: 'vanishing' });
    const sessionId = gone.sessionId;
    // Closing without DELETE: the client just goes away, as a crashed router would.
    await gone.client.close();
    await t.logs.waitFor((l) => l.msg === 'closing idle session' && l.sessionId === sessionId);
    assert.equal(await metric(t, 'flotilla_agent_sessions_expired_total', { server: 'stateful' }), 1);
    await waitUntil(() => sessions(t).open === 0, 10_000, 'the expired session to give its place back');
    const stale = await fetch(`${t.agent.url}/mcp/stateful`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sessionId!, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(stale.status, 404, 'an expired session is not found: the client initializes again');
    const next = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name: 'next' });
    await next.close();
    await waitUntil(() => sessions(t).open === 0, 10_000, 'closed');
  });

  test('a session with an open task is not idle: it expires only after its task ended', async () => {
    const client = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name: 'task-then-gone' });
    const sessionId = client.sessionId;
    const startedAt = Date.now();
    const { task } = await client.startTask('long_job', { steps: 20, stepMs: 100 });
    assert.equal(task.status, 'working');
    await client.client.close();
    const closed = await t.logs.waitFor((l) => l.msg === 'closing idle session' && l.sessionId === sessionId, 60_000);
    // The job needs at least 20 × 100 ms: the session cannot have been reaped before it ended.
    const reapedAfter = Date.parse(String(closed.time)) - startedAt;
    assert.ok(reapedAfter >= 2000, `reaped ${reapedAfter} ms after the task started`);
    assert.equal((t.agent.health().load as { tasks: number }).tasks, 0);
    await waitUntil(() => sessions(t).open === 0, 10_000, 'closed');
  });

  test('a task past its TTL no longer keeps its session alive', async () => {
    const client = await connectStatefulClient({ url: `${t.agent.url}/mcp/stateful`, name: 'short-ttl' });
    const sessionId = client.sessionId;
    const startedAt = Date.now();
    // 1000 steps of 50 ms would run for 50 s; its TTL of 1 s ends it for the agent (the server deletes it then).
    const { task } = await client.startTask('long_job', { steps: 1000, stepMs: 50 }, 1000);
    assert.equal(task.ttl, 1000);
    await client.client.close();
    const closed = await t.logs.waitFor((l) => l.msg === 'closing idle session' && l.sessionId === sessionId, 30_000);
    const reapedAfter = Date.parse(String(closed.time)) - startedAt;
    assert.ok(reapedAfter >= 1000, `reaped ${reapedAfter} ms after the task started, within its TTL`);
    await waitUntil(() => (t.agent.health().load as { tasks: number }).tasks === 0 && sessions(t).open === 0, 10_000, 'task and session gone');
  });
});
