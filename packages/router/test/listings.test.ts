import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { FlotillaErrorCode, type HostedServer } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { Agent } from 'undici';
import { Catalog } from '../src/index.js';
import { NodeListings } from '../src/endpoint/NodeListings.js';
import type { UpstreamPeer } from '../src/upstream/UpstreamPeer.js';
import { until } from './fixtures/mcpClient.js';

// The router's listing sessions (NodeListings) against servers that an agent replaces while running, as
// a live config change does: the old server's sessions end (their ids get 404), and its path leads to a
// new server from then on. Every catalog change is checked as it happens, so a moment without a replica
// cannot slip between two looks.
const logger = createLogger({ name: 'test', level: process.env.FLOTILLA_TEST_VERBOSE ? 'debug' : 'silent' });

/** One node's `/mcp/worker`: a server that can be replaced by a new generation, or made to refuse new sessions. */
class ReplaceableServer {
  generation = 1;
  /** New sessions get 503 ServerUnavailable, as an agent answers while a mount does not answer. */
  refusing = false;
  /** `tools/list` requests answered, by generation. */
  readonly listed = new Map<number, number>();
  private readonly sessions = new Map<string, { generation: number; transport: StreamableHTTPServerTransport; server: Server }>();
  private constructor(private readonly http: HttpServer) {}

  static async start(): Promise<ReplaceableServer> {
    const http = createServer();
    const s = new ReplaceableServer(http);
    http.on('request', (req, res) => void s.handle(req, res));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    return s;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** A new generation takes the path; every session of the old one ends (in flight or not), as a retired runtime's do. */
  async replace(options: { refusing?: boolean } = {}): Promise<void> {
    this.generation += 1;
    this.refusing = options.refusing ?? false;
    const old = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(old.map(async (s) => {
      await s.transport.close().catch(() => {});
      await s.server.close().catch(() => {});
    }));
  }

  async stop(): Promise<void> {
    await this.replace();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private async handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const session = this.sessions.get(id);
      if (session) return session.transport.handleRequest(req, res);
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      return;
    }
    if (this.refusing) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: FlotillaErrorCode.ServerUnavailable, message: 'server worker is unavailable' }, id: null }));
      return;
    }
    const generation = this.generation;
    const server = new Server({ name: 'worker', version: String(generation) }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, () => {
      this.listed.set(generation, (this.listed.get(generation) ?? 0) + 1);
      return { tools: [{ name: 'work', description: `generation ${generation}`, inputSchema: { type: 'object' as const } }] };
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void this.sessions.set(sid, { generation, transport, server }),
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  }
}

const WORKER: HostedServer = { name: 'worker', path: '/mcp/worker', toolDigest: 'sha256:worker', toolCount: 1 };

describe('NodeListings: a server replaced on its node', () => {
  const dispatchers = { calls: new Agent(), streams: new Agent() };
  const peer: UpstreamPeer = {
    clientInfo: { name: 'flotilla-router', version: 'test' },
    capabilities: {},
    protocolVersion: '2025-11-25',
    sink: { notify: () => {}, ask: async () => ({}) },
  };
  let nodes: Array<{ id: string; server: ReplaceableServer; listings: NodeListings }> = [];
  let catalog: Catalog;
  let unsubscribe: (() => void) | undefined;

  afterEach(async () => {
    unsubscribe?.();
    await Promise.all(nodes.map((n) => n.listings.close('test over', false)));
    await Promise.all(nodes.map((n) => n.server.stop()));
    nodes = [];
  });

  after(async () => {
    await Promise.all([dispatchers.calls.close(), dispatchers.streams.destroy()]);
  });

  /** `count` nodes hosting `worker`, listed in a fresh catalog. */
  async function mesh(count: number): Promise<void> {
    catalog = new Catalog();
    for (let i = 1; i <= count; i++) {
      const server = await ReplaceableServer.start();
      const id = `n${i}`;
      const listings = new NodeListings({ nodeId: id, catalog, dispatchers, peer, logger: logger.child({ nodeId: id }) }, server.baseUrl);
      listings.apply([WORKER]);
      nodes.push({ id, server, listings });
    }
    await until('worker listed on every node', () => catalog.tool('worker_work')?.replicas.length === count, 10_000);
  }

  /** Records every moment (catalog change, or a 1 ms tick) at which `worker_work` has fewer replicas than nodes, or a node would not take its calls. */
  function watchForGaps(): { gaps: string[]; stop: () => void } {
    const gaps: string[] = [];
    const look = (when: string): void => {
      const replicas = catalog.tool('worker_work')?.replicas ?? [];
      if (replicas.length < nodes.length) gaps.push(`${when}: worker_work on [${replicas.join(', ')}]`);
      for (const n of nodes) if (!n.listings.serves('worker')) gaps.push(`${when}: ${n.id} does not take worker calls`);
    };
    unsubscribe = catalog.onChange(() => look('catalog change'));
    const tick = setInterval(() => look('tick'), 1);
    return { gaps, stop: () => clearInterval(tick) };
  }

  it('every node replacing it at once: it never leaves the catalog nor stops taking calls, and its new listing replaces the old in place', async () => {
    await mesh(2);
    const watch = watchForGaps();
    await Promise.all(nodes.map((n) => n.server.replace()));
    await until(
      'both nodes listed generation 2',
      () => nodes.every((n) => (n.server.listed.get(2) ?? 0) > 0 && n.listings.connected('worker') && !n.listings.isRelisting('worker')),
      10_000,
    );
    watch.stop();
    assert.deepEqual(watch.gaps, [], 'worker was in the catalog on both nodes, and taken calls there, all along');
    assert.deepEqual(catalog.tool('worker_work')?.replicas, ['n1', 'n2']);
    assert.equal(catalog.tool('worker_work')?.definition.description, 'generation 2', 'the listing is the new server');
  });

  it('replaced again right after it was relisted, on every node: still never out of the catalog', async () => {
    await mesh(2);
    const watch = watchForGaps();
    await Promise.all(nodes.map((n) => n.server.replace()));
    await until('both relisted once', () => nodes.every((n) => (n.server.listed.get(2) ?? 0) > 0 && n.listings.connected('worker') && !n.listings.isRelisting('worker')), 10_000);
    // Well within a second of the first loss: the second reopen waits a moment, the listing stays meanwhile.
    await Promise.all(nodes.map((n) => n.server.replace()));
    await until('both listed generation 3', () => nodes.every((n) => (n.server.listed.get(3) ?? 0) > 0 && n.listings.connected('worker') && !n.listings.isRelisting('worker')), 10_000);
    watch.stop();
    assert.deepEqual(watch.gaps, [], 'worker was in the catalog on both nodes, and taken calls there, all along');
    assert.equal(catalog.tool('worker_work')?.definition.description, 'generation 3');
    assert.deepEqual(catalog.tool('worker_work')?.replicas, ['n1', 'n2']);
  });

  it('a replacement that does not answer new sessions leaves the catalog at once, and comes back once it answers', async () => {
    await mesh(2);
    const [n1] = nodes;
    await n1!.server.replace({ refusing: true });
    const left = Date.now();
    await until('n1 out of the catalog', () => catalog.tool('worker_work')?.replicas.join() === 'n2', 10_000);
    assert.ok(Date.now() - left < 3000, `left after ${Date.now() - left} ms: the failed reopen decides, not the grace period`);
    assert.equal(n1!.listings.serves('worker'), false, 'no calls go to a server that refuses sessions');
    await n1!.server.replace();
    await until('n1 back in the catalog', () => catalog.tool('worker_work')?.replicas.join() === 'n1,n2', 15_000);
    assert.equal(n1!.listings.serves('worker'), true);
  });

  it('a server the node no longer hosts leaves at once, without relisting', async () => {
    await mesh(2);
    nodes[0]!.listings.apply([]);
    assert.deepEqual(catalog.tool('worker_work')?.replicas, ['n2']);
    assert.equal(nodes[0]!.listings.serves('worker'), false);
  });
});
