/**
 * Per-client sessions through the router, with in-process nodes: each client session gets its own upstream
 * session on each node × server it uses, carrying its capabilities and client info; its log level reaches
 * sessions it opens later; its upstream sessions end with it; what it is shown depends on its
 * capabilities; the session limits answer clearly. The same model is checked end to end, against real
 * agents and the stateful example server, in test/e2e/session-isolation.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, LoggingMessageNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { parseExposition } from '../../../test/harness/prometheusText.js';
import { inProcessMesh } from './fixtures/InProcessMesh.js';
import { connectClient, rawPost, until } from './fixtures/mcpClient.js';
import { TEST_SERVERS, type NodeJournal } from './fixtures/TestNode.js';

/**
 * `sess`: one instance per MCP session. `whoami` tells this session's own id, the client's name and the
 * capabilities it declared; `needs_sampling` is listed only to clients that declared sampling; `log`
 * logs at three levels through the SDK, which filters by the level the session set.
 */
TEST_SERVERS.sess = (_journal: NodeJournal, nodeId: string) => {
  const s = new McpServer({ name: 'sess', version: '1.0.0' }, { capabilities: { tools: {}, logging: {} }, instructions: 'Call sess_whoami to learn who you are.' });
  const sessionId = randomUUID();
  s.server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: [
      { name: 'whoami', inputSchema: { type: 'object' as const }, annotations: { readOnlyHint: true } },
      { name: 'log', inputSchema: { type: 'object' as const } },
      ...(s.server.getClientCapabilities()?.sampling ? [{ name: 'needs_sampling', inputSchema: { type: 'object' as const } }] : []),
    ],
  }));
  s.server.setRequestHandler(CallToolRequestSchema, async (req) => {
    if (req.params.name === 'log') {
      for (const level of ['debug', 'info', 'warning'] as const) await s.server.sendLoggingMessage({ level, data: `${level} from ${nodeId}` });
      return { content: [{ type: 'text', text: 'logged' }] };
    }
    const who = { nodeId, sessionId, client: s.server.getClientVersion()?.name, capabilities: s.server.getClientCapabilities() };
    return { content: [{ type: 'text', text: JSON.stringify(who) }] };
  });
  return s;
};

interface Who {
  nodeId: string;
  sessionId: string;
  client: string;
  capabilities: Record<string, unknown>;
}
const whoOf = (r: unknown): Who => JSON.parse(((r as CallToolResult).content[0] as { text: string }).text) as Who;

interface BareClient {
  client: Client;
  transport: StreamableHTTPClientTransport;
  logs: string[];
  /** Ends the session (DELETE) and closes the client. */
  close(): Promise<void>;
}

async function bareClient(url: string, name: string, capabilities: Record<string, unknown> = {}): Promise<BareClient> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  const logs: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return {
    client,
    transport,
    logs,
    close: async () => {
      await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

describe('per-client upstream sessions (in-process nodes)', () => {
  const mesh = inProcessMesh({ n1: ['sess'], n2: ['sess'] }, { strategy: 'round-robin', maxClientSessions: 6, upstreamIdleTimeoutMs: 60_000 });

  it("gives each client its own upstream session on each node, carrying that client's name and capabilities", async () => {
    const a = await bareClient(mesh.router.url, 'client-a', { sampling: {} });
    const b = await bareClient(mesh.router.url, 'client-b');
    try {
      const seen: Who[] = [];
      // Round-robin over two nodes: two calls in a row from one client reach both nodes.
      for (let i = 0; i < 2; i++) {
        for (const c of [a, a, b, b]) seen.push(whoOf(await c.client.callTool({ name: 'sess_whoami', arguments: {} })));
      }
      const aSeen = seen.filter((w) => w.client === 'client-a');
      const bSeen = seen.filter((w) => w.client === 'client-b');
      assert.equal(aSeen.length, 4);
      assert.deepEqual(aSeen[0]!.capabilities, { sampling: {} });
      assert.deepEqual(bSeen[0]!.capabilities, {});
      // Round-robin spreads each client over both nodes: one session per client per node, reused.
      assert.equal(new Set(aSeen.map((w) => w.sessionId)).size, 2);
      assert.equal(new Set(bSeen.map((w) => w.sessionId)).size, 2);
      assert.equal(new Set(aSeen.map((w) => w.nodeId)).size, 2);
      const shared = aSeen.map((w) => w.sessionId).filter((id) => bSeen.some((w) => w.sessionId === id));
      assert.deepEqual(shared, [], 'no upstream session is shared between clients');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('shows each client what the servers show it: a tool that needs sampling only to a client that declared it', async () => {
    const sampler = await bareClient(mesh.router.url, 'sampler', { sampling: {} });
    const plain = await bareClient(mesh.router.url, 'plain');
    try {
      const names = async (c: Client): Promise<string[]> => (await c.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith('sess_'));
      assert.deepEqual(await names(sampler.client), ['sess_log', 'sess_needs_sampling', 'sess_whoami']);
      assert.deepEqual(await names(plain.client), ['sess_log', 'sess_whoami']);
    } finally {
      await sampler.close();
      await plain.close();
    }
  });

  it('merges every server instructions under its namespace', async () => {
    const c = await bareClient(mesh.router.url, 'reader');
    try {
      const instructions = c.client.getInstructions() ?? '';
      assert.match(instructions, /^Flotilla router:/);
      assert.match(instructions, /## sess \(tools and prompts named sess_\*\)\nCall sess_whoami to learn who you are\./);
    } finally {
      await c.close();
    }
  });

  it('applies the client log level on every server, including sessions it opens later', async () => {
    const c = await bareClient(mesh.router.url, 'logger');
    try {
      // Set before any upstream session exists: the level must reach the sessions the calls open.
      await c.client.setLoggingLevel('info');
      for (let i = 0; i < 2; i++) await c.client.callTool({ name: 'sess_log', arguments: {} });
      await until('log lines from both nodes', () => c.logs.length >= 4);
      assert.deepEqual(c.logs.filter((l) => l.startsWith('debug')), []);
      assert.deepEqual(new Set(c.logs.map((l) => l.split(' ')[0])), new Set(['info', 'warning']));
      assert.deepEqual(new Set(c.logs.map((l) => l.split(' ').at(-1))), new Set(['n1', 'n2']));
      const before = c.logs.length;
      await c.client.setLoggingLevel('warning');
      await c.client.callTool({ name: 'sess_log', arguments: {} });
      await until('the next log line', () => c.logs.length > before);
      assert.deepEqual(c.logs.slice(before).map((l) => l.split(' ')[0]), ['warning']);
    } finally {
      await c.close();
    }
  });

  it("ends a client's upstream sessions on every node when the client ends its session", async () => {
    const opened = (): number => mesh.nodes.reduce((n, node) => n + node.journal.sessionsOpened.length, 0);
    const closed = (): number => mesh.nodes.reduce((n, node) => n + node.journal.sessionsClosed.length, 0);
    const c = await bareClient(mesh.router.url, 'leaver');
    const before = { opened: opened(), closed: closed() };
    await c.client.callTool({ name: 'sess_whoami', arguments: {} });
    await c.client.callTool({ name: 'sess_whoami', arguments: {} });
    assert.equal(opened() - before.opened, 2, 'one upstream session per node the client used');
    await c.close();
    await until('both upstream sessions ended on their nodes', () => closed() - before.closed === 2);
  });

  it('refuses a client session past --max-client-sessions with 503 and a JSON-RPC error that says so, and counts it', async () => {
    const held: Array<{ transport: StreamableHTTPClientTransport }> = [];
    try {
      // The mesh's own client holds one session; fill the rest.
      const metrics = async (): Promise<number> =>
        parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text()).value('flotilla_router_client_sessions_refused_total') ?? 0;
      const refusedBefore = await metrics();
      for (;;) {
        const init = await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } }));
        if (init.status === 503) {
          const error = (init.json as { error: { code: number; message: string } }).error;
          assert.equal(error.code, -32016);
          assert.match(error.message, /maximum of 6 client sessions/);
          assert.equal(init.headers.get('retry-after'), '5');
          break;
        }
        assert.equal(init.status, 200);
        held.push({ transport: new StreamableHTTPClientTransport(new URL(mesh.router.url), { sessionId: init.headers.get('mcp-session-id')! }) });
        assert.ok(held.length <= 6, 'the limit was never enforced');
      }
      assert.equal((await metrics()) - refusedBefore, 1);
      // One session ends: a new one is welcome again.
      await held.pop()!.transport.terminateSession();
      const again = await bareClient(mesh.router.url, 'again');
      await again.close();
    } finally {
      for (const h of held) await h.transport.terminateSession().catch(() => {});
    }
  });
});

describe('upstream session idle expiry (in-process nodes)', () => {
  const mesh = inProcessMesh({ n1: ['sess'] }, { upstreamIdleTimeoutMs: 300 });

  it('lets go of an upstream session idle past the timeout without ending it on the node; the next call takes the same session up again', async () => {
    // A plain HTTP client (no standalone stream: a client's stream keeps the upstream ones held).
    const hello = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'sleeper', version: '1' } } });
    const init = await rawPost(mesh.router.url, hello);
    const inSession = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
    const whoami = async (id: number): Promise<Who> => {
      const r = await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'sess_whoami', arguments: {} } }), inSession);
      return whoOf((r.json as { result: unknown }).result);
    };
    const journal = mesh.nodes[0]!.journal;
    const first = await whoami(2);
    const closedOnNode = journal.sessionsClosed.length;
    const idleClosed = async (): Promise<number> =>
      parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text()).value('flotilla_router_upstream_sessions_closed_total', { reason: 'idle' }) ?? 0;
    const upstream = async (): Promise<number> => parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text()).value('flotilla_router_upstream_sessions') ?? -1;
    await until('the idle upstream session let go of', async () => (await idleClosed()) >= 1 && (await upstream()) === 0);
    assert.equal(journal.sessionsClosed.length, closedOnNode, 'the session is not ended on the node: other replicas may use it');
    const second = await whoami(3);
    assert.equal(second.sessionId, first.sessionId, "the client's session on the node, with its state, is taken up again");
  });
});

describe('client session idle expiry (in-process nodes)', () => {
  const mesh = inProcessMesh({ n1: ['sess'] }, { sessionIdleTimeoutMs: 400 });

  it('closes a client session idle past the timeout with its upstream sessions; later requests get 404, and the client starts again', async () => {
    const hello = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'idle', version: '1' } } });
    const init = await rawPost(mesh.router.url, hello);
    const sessionId = init.headers.get('mcp-session-id')!;
    const inSession = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), inSession);
    const call = await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'sess_whoami', arguments: {} } }), inSession);
    assert.equal(call.status, 200);
    const journal = mesh.nodes[0]!.journal;
    const closedBefore = journal.sessionsClosed.length;
    const expired = async (): Promise<number> =>
      parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text()).value('flotilla_router_client_sessions_expired_total') ?? 0;
    await until('the idle client session expired', async () => (await expired()) >= 1);
    await until('its upstream session ended on the node', () => journal.sessionsClosed.length > closedBefore);
    const after = await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }), inSession);
    assert.equal(after.status, 404);
    assert.equal((after.json as { error: { code: number; message: string } }).error.message, 'Session not found');
    const again = await rawPost(mesh.router.url, hello);
    assert.equal(again.status, 200, 'a new initialize starts a new session');
    assert.notEqual(again.headers.get('mcp-session-id'), sessionId);
  });
});
