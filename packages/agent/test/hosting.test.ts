/**
 * Hosting: fastmcp and SDK-factory servers served over Streamable HTTP by a real agent (real nats-server,
 * real SDK client), the registry record with tool digests, and clear answers to bad HTTP input.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LoadReportSchema, NodeRecordSchema, subjects, type PingData } from '@flotilla/protocol';
import { createRegistry } from '@flotilla/registry';
import { createLogger } from '@flotilla/telemetry';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { toolDigest } from '../src/index.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';
import { CollectedSubject } from './support/natsSubscription.js';
import { RegistryView } from './support/registryView.js';

const SLOW_SOURCE = fileURLToPath(new URL('../../examples/src/slow.ts', import.meta.url));
const FAILING_SOURCE = fileURLToPath(new URL('../../examples/src/failing.ts', import.meta.url));

let nats: NatsServerProcess;
let nc: NatsConnection;
let a: TestAgent;
let b: TestAgent;
/** When `a` was being started (Date.now() before and after startTestAgent): its uptime counts from in between. */
let aStarting: { from: number; to: number };

before(async () => {
  nats = await NatsServerProcess.start();
  nc = await connect({ servers: nats.url });
  const from = Date.now();
  a = await startTestAgent({
    natsUrl: nats.url,
    servers: [
      { name: 'echo', module: '@flotilla/examples/echo' },
      { name: 'slow', module: SLOW_SOURCE },
      { name: 'failing', module: FAILING_SOURCE },
    ],
  });
  aStarting = { from, to: Date.now() };
  b = await startTestAgent({
    natsUrl: nats.url,
    servers: [
      { name: 'echo', module: '@flotilla/examples/echo' },
      { name: 'sdk', module: '@flotilla/examples/sdkEcho' },
    ],
  });
});

after(async () => {
  await a?.agent.stop();
  await b?.agent.stop();
  await nc?.close();
  await nats?.dispose();
});

describe('serving hosted servers over Streamable HTTP', () => {
  test('logs one "agent ready" line with url, grpc and servers', () => {
    const ready = a.logs.lines.filter((l) => l.msg === 'agent ready');
    assert.equal(ready.length, 1);
    assert.equal(ready[0]!.nodeId, a.agent.nodeId);
    assert.equal(ready[0]!.url, a.agent.url);
    assert.equal(ready[0]!.grpc, a.agent.grpcAddress);
    assert.deepEqual(ready[0]!.servers, ['echo', 'slow', 'failing']);
  });

  test('a fastmcp server lists and calls its tools', async () => {
    const client = await connectClient(a.agent, 'echo');
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'echo']);
      assert.equal(tools.find((t) => t.name === 'echo')?.annotations?.readOnlyHint, true);
      const result = await client.callTool({ name: 'echo', arguments: { text: 'hello flotilla' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'hello flotilla' }]);
      const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
      assert.deepEqual(sum.content, [{ type: 'text', text: '42' }]);
    } finally {
      await closeClient(client);
    }
  });

  test('an SDK McpServer factory serves each session with its own server', async () => {
    const first = await connectClient(a.agent, 'slow');
    const second = await connectClient(a.agent, 'slow');
    try {
      const { tools } = await first.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['status', 'work']);
      const work = tools.find((t) => t.name === 'work');
      assert.equal(work?.annotations?.idempotentHint, true);
      assert.equal(work?.annotations?.readOnlyHint, false);
      const [r1, r2] = await Promise.all([
        first.callTool({ name: 'work', arguments: { steps: 2, stepMs: 1 } }),
        second.callTool({ name: 'work', arguments: { steps: 1, stepMs: 1 } }),
      ]);
      assert.deepEqual(r1.content, [{ type: 'text', text: 'done: 2 steps of 1 ms' }]);
      assert.deepEqual(r2.content, [{ type: 'text', text: 'done: 1 steps of 1 ms' }]);
    } finally {
      await closeClient(first);
      await closeClient(second);
    }
  });

  test('the SDK echo the benchmark suite runs bare is hosted from its package export', async () => {
    const client = await connectClient(b.agent, 'sdk');
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => [t.name, t.annotations?.readOnlyHint]), [['echo', true]]);
      const result = await client.callTool({ name: 'echo', arguments: { text: 'same server, bare or hosted' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'same server, bare or hosted' }]);
      const large = await client.callTool({ name: 'echo', arguments: { text: 'ab', repeat: 3 } });
      assert.deepEqual(large.content, [{ type: 'text', text: 'ababab' }]);
    } finally {
      await closeClient(client);
    }
  });

  test('tool failures come back as isError results with a clear message', async () => {
    const client = await connectClient(a.agent, 'failing');
    try {
      const failed = await client.callTool({ name: 'fail', arguments: { reason: 'no luck' } });
      assert.equal(failed.isError, true);
      assert.deepEqual(failed.content, [{ type: 'text', text: 'fail: no luck' }]);
      const crashed = await client.callTool({ name: 'crash', arguments: {} });
      assert.equal(crashed.isError, true);
      assert.match(JSON.stringify(crashed.content), /crash: unexpected failure inside the tool/);
    } finally {
      await closeClient(client);
    }
  });

  test('opening sessions does not pay fastmcp httpStream\'s ~1.1 s per session', async () => {
    // fastmcp's own httpStream spends ~1.1 s per session open; hosted through our transport a session
    // opens as fast as the SDK allows. 8 sequential sessions under 8 × 1.1 s / 2 leaves a wide margin.
    const sessions = 8;
    const t0 = performance.now();
    for (let i = 0; i < sessions; i++) {
      const client = await connectClient(a.agent, 'echo');
      await client.callTool({ name: 'echo', arguments: { text: String(i) } });
      await closeClient(client);
    }
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < (sessions * 1100) / 2, `${sessions} sessions took ${Math.round(elapsed)} ms`);
    // Closed sessions are forgotten (DELETE ends them on the agent).
    await waitUntil(() => (a.agent.health().servers as Record<string, { sessions: number }>).echo!.sessions === 0, 10_000, 'sessions to close');
  });
});

describe('idle sessions', () => {
  test('a session nobody uses any more is closed after the idle timeout', async () => {
    const idle = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }], sessionIdleTimeoutMs: 200 });
    try {
      const client = await connectClient(idle.agent, 'echo');
      await client.callTool({ name: 'echo', arguments: { text: 'once' } });
      const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
      // While the client holds its notification stream the session is in use; a client that just goes
      // away (no DELETE) closes that stream, and the session is reaped once idle.
      await client.close();
      await idle.logs.waitFor((l) => l.msg === 'closing idle session' && l.sessionId === sessionId);
      assert.equal((idle.agent.health().servers as Record<string, { sessions: number }>).echo!.sessions, 0);
      const res = await fetch(`${idle.agent.url}/mcp/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
      assert.equal(res.status, 404);
      await res.body?.cancel();
    } finally {
      await idle.agent.stop();
    }
  });
});

describe('registry record', () => {
  test('the node record is in NATS KV with per-server tool digests', async () => {
    const registry = createRegistry({ kind: 'nats-kv', nc, logger: createLogger({ name: 'test', level: 'silent' }) });
    const view = new RegistryView(registry);
    await view.waitForNode(a.agent.nodeId, (n) => n.ping !== undefined);
    await view.waitForNode(b.agent.nodeId);
    const nodes = view.nodes;
    const record = NodeRecordSchema.parse(nodes.find((n) => n.record.nodeId === a.agent.nodeId)!.record);
    assert.equal(record.mcpBaseUrl, a.agent.url);
    assert.equal(record.healthAddress, a.agent.grpcAddress);
    assert.equal(record.draining, false);
    assert.deepEqual(record.servers.map((s) => [s.name, s.path]), [['echo', '/mcp/echo'], ['slow', '/mcp/slow'], ['failing', '/mcp/failing']]);

    // The digest is the one of the tool list a client sees.
    const client = await connectClient(a.agent, 'echo');
    const { tools } = await client.listTools();
    await closeClient(client);
    const echo = record.servers.find((s) => s.name === 'echo')!;
    assert.equal(echo.toolDigest, toolDigest(tools));
    assert.equal(echo.toolCount, 2);
    assert.notEqual(record.servers.find((s) => s.name === 'slow')!.toolDigest, echo.toolDigest);

    // Two agents hosting the same server announce the same digest: they are replicas.
    const other = nodes.find((n) => n.record.nodeId === b.agent.nodeId)!.record;
    assert.equal(other.servers[0]!.toolDigest, echo.toolDigest);
    assert.notEqual(other.instanceId, record.instanceId);

    // Ping data is that of the latest heartbeat; the watch reports record and health changes only, so read it.
    const pingWhen = async (match: (p: PingData) => boolean): Promise<PingData> => {
      let found: PingData | undefined;
      await waitUntil(async () => {
        const p = (await registry.list()).find((n) => n.record.nodeId === a.agent.nodeId)?.ping;
        return p !== undefined && match(p) && (found = p) !== undefined;
      }, 20_000, 'ping data');
      return found!;
    };
    const ping = await pingWhen((p) => p.natsRttMs !== undefined);
    assert.equal(ping.status, 'ok');
    assert.equal(ping.inflight, 0);
    // Uptime is the agent's own, at the time of the ping (rounded to 0.1 s).
    const uptime = { min: (ping.at - aStarting.to) / 1000 - 0.05, max: (ping.at - aStarting.from) / 1000 + 0.05 };
    assert.ok(ping.uptimeS >= uptime.min && ping.uptimeS <= uptime.max, `uptime ${ping.uptimeS} s, expected ${uptime.min}..${uptime.max}`);
    // The event-loop lag is measured: a 400 ms stall of this process (the agent's loop too) shows in the load
    // report of the window that held it. (Pings carry the latest window's value, and a ping may fall after
    // the next window has started over, so the reports, one per window, are what can be relied on.)
    const reports = new CollectedSubject(nc, subjects().load(a.agent.nodeId), LoadReportSchema);
    // The subscription must be at the server before the stall: the report of the stalled window is sent
    // right after it, and could otherwise overtake the subscription (both leave this process then).
    await nc.flush();
    const stallEnd = Date.now() + 400;
    while (Date.now() < stallEnd);
    await reports.waitFor((r) => r.at > stallEnd && r.eventLoopLagMs >= 300);
    reports.stop();
    await view.stop();
    await registry.close();
  });
});

describe('bad HTTP input', () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${a.agent.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });

  test('invalid JSON is a 400 parse error', async () => {
    const res = await post('/mcp/echo', '{not json');
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: number; message: string } };
    assert.equal(body.error.code, -32700);
    assert.match(body.error.message, /not valid JSON/);
  });

  test('an unknown path or server is a 404 that says what exists', async () => {
    const res = await fetch(`${a.agent.url}/nope`);
    assert.equal(res.status, 404);
    assert.match(JSON.stringify(await res.json()), /\/mcp\/echo/);
    const unknown = await post('/mcp/nosuch', '{}');
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /no MCP server "nosuch".*echo/);
  });

  test('a request without a session that is not initialize is a 400; an unknown session a 404', async () => {
    const noSession = await post('/mcp/echo', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    assert.equal(noSession.status, 400);
    assert.match(JSON.stringify(await noSession.json()), /Mcp-Session-Id header is required/);
    const unknown = await post('/mcp/echo', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { 'mcp-session-id': 'no-such-session' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: number } }).error.code, -32001);
    const get = await fetch(`${a.agent.url}/mcp/echo`, { headers: { accept: 'text/event-stream' } });
    assert.equal(get.status, 400);
    await get.body?.cancel();
  });

  test('an unsupported method is a 405 with Allow', async () => {
    const res = await fetch(`${a.agent.url}/mcp/echo`, { method: 'PUT', body: '{}' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, POST, DELETE');
    await res.body?.cancel();
    const health = await fetch(`${a.agent.url}/healthz`, { method: 'POST' });
    assert.equal(health.status, 405);
    await health.body?.cancel();
  });

  test('a foreign Host header is refused (DNS rebinding protection)', async () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    // fetch does not let a caller set Host; Origin is checked the same way.
    const res = await post('/mcp/echo', init, { origin: 'http://evil.example' });
    assert.equal(res.status, 403);
    assert.match(JSON.stringify(await res.json()), /evil\.example/);
  });

  test('a foreign Host header is refused, a loopback one accepted', async () => {
    const probe = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${a.agent.url}/mcp/echo`);
        const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { host, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
      });
    assert.equal(await probe('evil.example:80'), 403);
    // Allowed names get past the check (and then fail for want of a session, which is the next check).
    assert.equal(await probe(`localhost:${new URL(a.agent.url).port}`), 400);
  });

  test('/healthz and /readyz answer JSON', async () => {
    const live = await fetch(`${a.agent.url}/healthz`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${a.agent.url}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { ready: boolean; nats: string; servers: Record<string, { serving: boolean }> };
    assert.equal(body.ready, true);
    assert.equal(body.nats, 'connected');
    assert.equal(body.servers.echo?.serving, true);
  });
});
