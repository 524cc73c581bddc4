/**
 * The front door inside a router started in this process (startRouter, a real nats-server, an in-process
 * node, real SDK clients) with API keys: the caller's identity on the call's span (`enduser.id`, with the
 * OpenTelemetry SDK on and an in-memory exporter), a session whose open stream does nothing is ended,
 * a session's rate limit answers RateLimited with `retryAfterMs`, and connections past the cap are closed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { createLogger, startTracing } from '@flotilla/telemetry';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { createApiKey, startRouter, type RunningRouter } from '../src/index.js';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { parseExposition } from '../../../test/harness/prometheusText.js';
import { rawPost, until } from './fixtures/mcpClient.js';
import { TestNode } from './fixtures/TestNode.js';

interface ExportedSpan {
  name: string;
  attributes: Record<string, unknown>;
}
type SpanExporterOption = NonNullable<NonNullable<Parameters<typeof startTracing>[1]>['exporter']>;
const exported: ExportedSpan[] = [];
const tracing = startTracing('front-limits-test', {
  exporter: {
    export(batch: ExportedSpan[], done: (result: { code: number }) => void): void {
      exported.push(...batch);
      done({ code: 0 });
    },
    shutdown: async (): Promise<void> => {},
  } as unknown as SpanExporterOption,
});

const logger = createLogger({ name: 'router', level: process.env.FLOTILLA_TEST_VERBOSE ? 'debug' : 'silent' });
let nats: NatsServerProcess;
let node: TestNode;
let router: RunningRouter;
let dir: string;
const key = createApiKey({ subject: 'span-bot' });
/** `/api/v1/*` needs the ops permission when auth is on. */
const opsKey = createApiKey({ subject: 'operator', roles: ['flotilla:ops'] });
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
const auth = { authorization: `Bearer ${key.key}` };

before(async () => {
  nats = await NatsServerProcess.start();
  dir = await mkdtemp(join(tmpdir(), 'flotilla-front-limits-'));
  await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: [key.entry, opsKey.entry] }));
  router = await startRouter({
    natsUrl: nats.url,
    port: 0,
    logger,
    staleAfterMs: 1500,
    heartbeatIntervalMs: 300,
    sessionIdleTimeoutMs: 3000,
    auth: { apiKeysFile: join(dir, 'keys.json') },
    limits: { streamIdleTimeoutMs: 500, perSessionRate: 5, perSessionBurst: 10 },
  });
  node = await TestNode.start({ nodeId: 'n1', natsUrl: nats.url, servers: ['echo'] });
  await until('echo in the catalog', async () => {
    const { tools } = (await (await fetch(router.url.replace('/mcp', '/api/v1/tools'), { headers: { authorization: `Bearer ${opsKey.key}` } })).json()) as { tools: Array<{ name: string }> };
    return tools.some((t) => t.name === 'echo_say');
  });
});

after(async () => {
  await router?.stop();
  await node?.stop();
  await nats?.dispose();
  await tracing.shutdown(2000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the identity and limits inside the router', () => {
  it("a call's server span names the caller (enduser.id)", async () => {
    const client = new Client({ name: 'span-client', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(router.url), { requestInit: { headers: auth } }));
    try {
      await client.callTool({ name: 'echo_say', arguments: { text: 'hi' } });
    } finally {
      await client.close();
    }
    await tracing.flush();
    const span = exported.find((s) => s.name === 'tools/call echo_say');
    assert.ok(span, `spans: ${exported.map((s) => s.name).join(', ')}`);
    assert.equal(span.attributes['enduser.id'], `key:${key.entry.id}`);
  });

  it("a session's rate limit answers RateLimited (-32020) with retryAfterMs", async () => {
    const client = new Client({ name: 'rate-client', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(router.url), { requestInit: { headers: auth } }));
    try {
      const results = await Promise.allSettled(Array.from({ length: 30 }, () => client.ping()));
      const limited = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as McpError);
      assert.ok(limited.length >= 15, `${limited.length} of 30 pings limited`);
      assert.ok(limited.every((e) => e.code === FlotillaErrorCode.RateLimited && (e.data as { retryAfterMs: number; limit: string }).retryAfterMs > 0 && (e.data as { limit: string }).limit === 'session_rate'));
    } finally {
      await client.close();
    }
  });

  it('a session whose open stream does nothing is ended (later requests get 404), and counted as expired', async () => {
    const expired = async (): Promise<number> => parseExposition(await (await fetch(router.url.replace('/mcp', '/metrics'))).text()).value('flotilla_router_client_sessions_expired_total') ?? 0;
    const before = await expired();
    const init = await rawPost(router.url, INIT, auth);
    const sessionId = init.headers.get('mcp-session-id')!;
    const inSession = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    const stream = await fetch(router.url, { headers: { ...inSession, accept: 'text/event-stream' } });
    assert.equal(stream.status, 200);
    const t0 = Date.now();
    // The router ends the stream when it ends the session.
    await stream.text();
    const ms = Date.now() - t0;
    assert.ok(ms < 15_000, `the idle stream was closed after ${ms} ms`);
    assert.ok((await expired()) > before);
    const after = await rawPost(router.url, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), inSession);
    assert.equal(after.status, 404);
  });
});

describe('connection cap', () => {
  it('connections past --max-connections are closed at once; the router keeps serving the others', async () => {
    const capped = await startRouter({ natsUrl: nats.url, port: 0, logger, auth: { apiKeysFile: join(dir, 'keys.json') }, limits: { maxConnections: 3 } });
    const sockets: Socket[] = [];
    try {
      const { port } = new URL(capped.url);
      const open = (): Promise<{ socket: Socket; closedEarly: Promise<boolean> }> =>
        new Promise((resolve) => {
          const socket = netConnect(Number(port), '127.0.0.1', () => {
            const closedEarly = new Promise<boolean>((r) => {
              socket.once('close', () => r(true));
              setTimeout(() => r(false), 1000).unref();
            });
            resolve({ socket, closedEarly });
          });
          socket.on('error', () => {});
          sockets.push(socket);
        });
      const held = await Promise.all([open(), open(), open()]);
      const extra = await open();
      assert.equal(await extra.closedEarly, true, 'the fourth connection is closed');
      assert.deepEqual(await Promise.all(held.map((h) => h.closedEarly)), [false, false, false], 'the first three stay open');
      // Freed slots serve again.
      for (const h of held) h.socket.destroy();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await fetch(capped.url.replace('/mcp', '/healthz'))).status, 200);
    } finally {
      for (const s of sockets) s.destroy();
      await capped.stop();
    }
  });
});
