import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ElicitResultSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  type ClientCapabilities,
  type Implementation,
} from '@modelcontextprotocol/sdk/types.js';
import { Agent } from 'undici';
import { CallCancelledError, JsonRpcError, UpstreamFailure, isNodeFault, isToolFault } from '../src/index.js';
import { readListing } from '../src/upstream/readListing.js';
import type { ServerNotificationMessage, ServerRequestMessage } from '../src/upstream/ServerMessage.js';
import type { ServerMessageSink, UpstreamPeer } from '../src/upstream/UpstreamPeer.js';
import { UpstreamSession } from '../src/upstream/UpstreamSession.js';
import { until } from './fixtures/mcpClient.js';

// The upstream layer alone: one UpstreamSession against a low-level SDK server that pages its lists, has
// tools that hang, report progress, log, ask the client, or refuse as a busy agent would; without
// registry, balancer or front.
const logger = createLogger({ name: 'test', level: 'silent' });
const PAGE = 2;

function paged<T>(items: T[], cursor: string | undefined): { items: T[]; nextCursor?: string } {
  const offset = cursor ? Number(cursor) : 0;
  const next = offset + PAGE;
  return { items: items.slice(offset, next), ...(next < items.length ? { nextCursor: String(next) } : {}) };
}

/** A sink that records what reaches it and answers requests with `answer`. */
class RecordingSink implements ServerMessageSink {
  readonly notifications: ServerNotificationMessage[] = [];
  readonly requests: ServerRequestMessage[] = [];
  constructor(private readonly answer: (r: ServerRequestMessage) => Record<string, unknown> = () => ({})) {}
  notify(n: ServerNotificationMessage): void {
    this.notifications.push(n);
  }
  async ask(r: ServerRequestMessage): Promise<Record<string, unknown>> {
    this.requests.push(r);
    return this.answer(r);
  }
}

describe('UpstreamSession', () => {
  let http: HttpServer;
  let url: string;
  const started: string[] = [];
  const aborted: string[] = [];
  /** What each session's server saw of its client at initialize. */
  const hellos: Array<{ info: Implementation | undefined; caps: ClientCapabilities | undefined }> = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const servers: Server[] = [];
  const dispatchers = { calls: new Agent(), streams: new Agent() };

  before(async () => {
    http = createServer(async (req, res) => {
      const id = req.headers['mcp-session-id'];
      const existing = typeof id === 'string' ? transports.get(id) : undefined;
      if (existing) return existing.handleRequest(req, res);
      if (typeof id === 'string') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void transports.set(sid, transport) });
      const server = new Server({ name: 'paged', version: '1' }, { capabilities: { tools: {}, resources: {}, prompts: {}, logging: {} }, instructions: 'Use t0 first.' });
      servers.push(server);
      server.oninitialized = () => hellos.push({ info: server.getClientVersion(), caps: server.getClientCapabilities() });
      const tools = Array.from({ length: 5 }, (_, i) => ({ name: `t${i}`, inputSchema: { type: 'object' as const } }));
      server.setRequestHandler(ListToolsRequestSchema, (r) => {
        const p = paged(tools, r.params?.cursor);
        return { tools: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
      });
      const resources = Array.from({ length: 3 }, (_, i) => ({ uri: `mem://r${i}`, name: `r${i}` }));
      server.setRequestHandler(ListResourcesRequestSchema, (r) => {
        const p = paged(resources, r.params?.cursor);
        return { resources: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
      });
      server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: [{ uriTemplate: 'mem://x/{id}', name: 'x' }] }));
      const prompts = Array.from({ length: 4 }, (_, i) => ({ name: `p${i}` }));
      server.setRequestHandler(ListPromptsRequestSchema, (r) => {
        const p = paged(prompts, r.params?.cursor);
        return { prompts: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
      });
      server.setRequestHandler(CallToolRequestSchema, async (r, extra) => {
        const name = r.params.name;
        started.push(name);
        const token = r.params._meta?.progressToken;
        if (name === 'quick') return { content: [{ type: 'text', text: 'quick' }], structuredContent: { raw: true } };
        if (name === 'busy') throw new McpError(FlotillaErrorCode.NodeBusy, 'node busy: queue full');
        if (name === 'bad') throw new McpError(-32602, 'bad input', { field: 'x' });
        if (name === 'progress') {
          for (let i = 1; i <= 3; i++) {
            await new Promise((res) => setTimeout(res, 30));
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token!, progress: i, total: 3 } });
          }
          return { content: [{ type: 'text', text: 'done' }] };
        }
        if (name === 'talk') {
          await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'during the call' } });
          const answer = await extra.sendRequest({ method: 'elicitation/create', params: { mode: 'form', message: 'ok?', requestedSchema: { type: 'object', properties: {} } } }, ElicitResultSchema);
          // Outside the call: the standalone stream.
          await server.notification({ method: 'notifications/message', params: { level: 'info', data: 'outside any call' } });
          return { content: [{ type: 'text', text: answer.action }] };
        }
        // Hangs until cancelled.
        await new Promise<void>((resolve) => extra.signal.addEventListener('abort', () => resolve(), { once: true }));
        aborted.push(name);
        return { content: [] };
      });
      await server.connect(transport);
      await transport.handleRequest(req, res);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp/paged`;
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.close().catch(() => {})));
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
    await Promise.all([dispatchers.calls.close(), dispatchers.streams.destroy()]);
  });

  const peerSink = new RecordingSink();
  const peer: UpstreamPeer = {
    clientInfo: { name: 'client-a', version: '2.0.0' },
    capabilities: { elicitation: { form: {} }, roots: { listChanged: true } },
    protocolVersion: '2025-11-25',
    sink: peerSink,
  };

  const open = async (events: { lost: string[] } = { lost: [] }): Promise<UpstreamSession> => {
    const session = new UpstreamSession({
      nodeId: 'node-x',
      server: 'paged',
      url: new URL(url),
      dispatchers,
      peer,
      logger,
      onLost: (_s, reason) => void events.lost.push(reason),
    });
    await session.open();
    return session;
  };
  const params = (name: string, token?: string): Record<string, unknown> => ({ name, arguments: {}, _meta: { 'flotilla/callId': randomUUID(), ...(token ? { progressToken: token } : {}) } });
  const opts = (timeoutMs = 10_000, signal = new AbortController().signal) => ({ signal, timeoutMs });

  it('opens with the peer own capabilities and client info, and follows every page of every list', async () => {
    const session = await open();
    assert.deepEqual(hellos.at(-1), { info: peer.clientInfo, caps: peer.capabilities });
    const listing = await readListing(session);
    assert.deepEqual(listing.tools.map((t) => t.name), ['t0', 't1', 't2', 't3', 't4']);
    assert.deepEqual(listing.resources.map((r) => r.uri), ['mem://r0', 'mem://r1', 'mem://r2']);
    assert.deepEqual(listing.resourceTemplates.map((t) => t.uriTemplate), ['mem://x/{id}']);
    assert.deepEqual(listing.prompts.map((p) => p.name), ['p0', 'p1', 'p2', 'p3']);
    assert.equal(listing.instructions, 'Use t0 first.');
    assert.equal(session.url, url);
    assert.ok(session.sessionId);
    await session.close('test');
  });

  it('passes the result through untouched', async () => {
    const session = await open();
    const result = await session.request('tools/call', params('quick'), opts());
    assert.deepEqual(result, { content: [{ type: 'text', text: 'quick' }], structuredContent: { raw: true } });
    await session.close('test');
  });

  it('hands progress under the request token to the request (restarting its timeout), not to the sink', async () => {
    const session = await open();
    const seen: number[] = [];
    const sink = new RecordingSink();
    // Each step takes 30 ms; a 200 ms timeout only holds because progress restarts it.
    const result = await session.request('tools/call', params('progress', 'tok-1'), { ...opts(200), progressToken: 'tok-1', sink, onprogress: (p) => void seen.push(p.progress) });
    assert.deepEqual(result.content, [{ type: 'text', text: 'done' }]);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(sink.notifications.length, 0);
    await session.close('test');
  });

  it("sends the call's server messages to the call's sink (its answer goes back upstream), and the rest to the peer", async () => {
    const session = await open();
    const sink = new RecordingSink(() => ({ action: 'accept', content: {} }));
    const before = peerSink.notifications.length;
    const result = await session.request('tools/call', params('talk'), { ...opts(), sink });
    assert.deepEqual(result.content, [{ type: 'text', text: 'accept' }]);
    assert.deepEqual(sink.notifications.map((n) => n.params?.['data']), ['during the call']);
    assert.deepEqual(sink.requests.map((r) => r.method), ['elicitation/create']);
    await until('the standalone message to reach the peer', () => peerSink.notifications.slice(before).some((n) => n.params?.['data'] === 'outside any call'));
    await session.close('test');
  });

  it('turns a busy answer into a refusal and passes the server own errors through', async () => {
    const session = await open();
    await assert.rejects(session.request('tools/call', params('busy'), opts()), (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused' && err.code === FlotillaErrorCode.NodeBusy && !err.countsAgainstNode);
    await assert.rejects(session.request('tools/call', params('bad'), opts()), (err: unknown) => err instanceof JsonRpcError && err.code === -32602 && /bad input$/.test(err.message) && (err.data as { field?: string }).field === 'x');
    await session.close('test');
  });

  it('cancels upstream when the client signal aborts', async () => {
    const session = await open();
    const client = new AbortController();
    const pending = session.request('tools/call', params('hang-cancel'), opts(60_000, client.signal));
    await until('the tool to start', () => started.includes('hang-cancel'));
    client.abort();
    await assert.rejects(pending, CallCancelledError);
    await until('the tool to see the cancellation', () => aborted.includes('hang-cancel'));
    assert.equal(session.inflightCount, 0);
    await session.close('test');
  });

  it('fails a hung call after its timeout, against the tool and not the node, and stops it upstream', async () => {
    const session = await open();
    await assert.rejects(session.request('tools/call', params('hang-timeout'), opts(150)), (err: unknown) => {
      assert.ok(err instanceof UpstreamFailure && err.kind === 'lost' && err.timedOut && /150 ms/.test(err.reason));
      assert.equal(isToolFault(err), true);
      assert.equal(isNodeFault(err), false);
      return true;
    });
    await until('the tool to see the cancellation', () => aborted.includes('hang-timeout'));
    await session.close('test');
  });

  it('ends a call at its deadline even while it makes progress', async () => {
    const session = await open();
    await assert.rejects(
      session.request('tools/call', params('progress', 'tok-d'), { ...opts(10_000), progressToken: 'tok-d', deadlineAt: Date.now() + 40 }),
      (err: unknown) => err instanceof UpstreamFailure && err.timedOut && /deadline/.test(err.reason) && !isToolFault(err),
    );
    await session.close('test');
  });

  it('fails an in-flight call at once when the connection to the node drops, naming the node', async () => {
    const session = await open();
    const pending = session.request('tools/call', params('hang-drop'), opts(600_000));
    await until('the tool to start', () => started.includes('hang-drop'));
    http.closeAllConnections();
    await assert.rejects(pending, (err: unknown) => err instanceof UpstreamFailure && err.kind === 'lost' && err.countsAgainstNode && /node-x/.test(err.reason));
    await session.close('test');
  });

  it('reports the session lost when the node forgets it (404), and refuses the request as never started', async () => {
    const events = { lost: [] as string[] };
    const session = await open(events);
    transports.delete(session.sessionId!);
    await assert.rejects(session.request('tools/call', params('quick'), opts()), (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused' && err.sessionGone);
    assert.equal(events.lost.length, 1);
    assert.match(events.lost[0]!, /no longer knows the session/);
    assert.equal(session.connected, false);
    await session.close('test');
  });

  it('refuses requests once closed', async () => {
    const session = await open();
    await session.close('test');
    await assert.rejects(session.request('tools/call', params('quick'), opts(1000)), (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused');
  });

  it('refuses to open on a node that does not answer, as never started', async () => {
    const session = new UpstreamSession({ nodeId: 'node-gone', server: 'paged', url: new URL('http://127.0.0.1:9/mcp/x'), dispatchers, peer, logger });
    await assert.rejects(session.open(), (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused' && err.countsAgainstNode);
  });
});
