import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@flotilla/telemetry';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { Agent } from 'undici';
import type { ServerMessageRelay } from '../src/endpoint/ServerMessageRelay.js';
import { UpstreamSession } from '../src/endpoint/UpstreamSession.js';
import { CallCancelledError, UpstreamFailure } from '../src/index.js';
import { until } from './fixtures/mcpClient.js';

// The endpoint layer alone: one UpstreamSession against a low-level SDK server that pages its lists and
// has tools that hang, without registry, balancer or front.
const logger = createLogger({ name: 'test', level: 'silent' });
const PAGE = 2;

function paged<T>(items: T[], cursor: string | undefined): { items: T[]; nextCursor?: string } {
  const offset = cursor ? Number(cursor) : 0;
  const next = offset + PAGE;
  return { items: items.slice(offset, next), ...(next < items.length ? { nextCursor: String(next) } : {}) };
}

describe('UpstreamSession', () => {
  let http: HttpServer;
  let url: string;
  const started: string[] = [];
  const aborted: string[] = [];
  const dispatcher = new Agent();
  // No call here talks back to the client, so the relay only has to exist.
  const relay: ServerMessageRelay = {
    relaySampling: () => Promise.reject(new Error('not expected')),
    relayElicitation: () => Promise.reject(new Error('not expected')),
    relayLog: () => {},
    relayResourceUpdated: () => {},
  };

  before(async () => {
    const transports = new Map<string, StreamableHTTPServerTransport>();
    http = createServer(async (req, res) => {
      const id = req.headers['mcp-session-id'];
      const existing = typeof id === 'string' ? transports.get(id) : undefined;
      if (existing) return existing.handleRequest(req, res);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void transports.set(sid, transport) });
      const server = new Server({ name: 'paged', version: '1' }, { capabilities: { tools: {}, resources: {}, prompts: {} } });
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
        started.push(r.params.name);
        if (r.params.name === 'quick') return { content: [{ type: 'text', text: 'quick' }] };
        // Hangs until cancelled.
        await new Promise<void>((resolve) => extra.signal.addEventListener('abort', () => resolve(), { once: true }));
        aborted.push(r.params.name);
        return { content: [] };
      });
      await server.connect(transport);
      await transport.handleRequest(req, res);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  after(async () => {
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
    await dispatcher.close();
  });

  const open = async (events: { lost: string[] } = { lost: [] }): Promise<UpstreamSession> => {
    const session = new UpstreamSession('node-x', { name: 'paged', path: '/mcp/paged', toolDigest: 'd', toolCount: 5 }, url, dispatcher, relay, {
      onListChanged: () => {},
      onLost: (_s, reason) => void events.lost.push(reason),
    }, logger);
    await session.connect();
    return session;
  };
  const call = (name: string): { method: 'tools/call'; params: { name: string; arguments: Record<string, unknown>; _meta: Record<string, unknown> } } => {
    const callId = randomUUID();
    return { method: 'tools/call', params: { name, arguments: {}, _meta: { 'flotilla/callId': callId } } };
  };

  it('follows every page of every list', async () => {
    const session = await open();
    const listing = await session.fetchListing();
    assert.deepEqual(listing.tools.map((t) => t.name), ['t0', 't1', 't2', 't3', 't4']);
    assert.deepEqual(listing.resources.map((r) => r.uri), ['mem://r0', 'mem://r1', 'mem://r2']);
    assert.deepEqual(listing.resourceTemplates.map((t) => t.uriTemplate), ['mem://x/{id}']);
    assert.deepEqual(listing.prompts.map((p) => p.name), ['p0', 'p1', 'p2', 'p3']);
    assert.equal(session.url, `${url}/mcp/paged`);
    await session.close('test');
  });

  it('forwards a request and returns the result', async () => {
    const session = await open();
    const req = call('quick');
    const result = await session.request(req, CallToolResultSchema, { callId: req.params._meta['flotilla/callId'] as string, signal: new AbortController().signal, timeoutMs: 10_000 });
    assert.deepEqual(result.content, [{ type: 'text', text: 'quick' }]);
    await session.close('test');
  });

  it('cancels upstream when the client signal aborts', async () => {
    const session = await open();
    const req = call('hang-cancel');
    const client = new AbortController();
    const pending = session.request(req, CallToolResultSchema, { callId: req.params._meta['flotilla/callId'] as string, signal: client.signal, timeoutMs: 60_000 });
    await until('the tool to start', () => started.includes('hang-cancel'));
    client.abort();
    await assert.rejects(pending, CallCancelledError);
    await until('the tool to see the cancellation', () => aborted.includes('hang-cancel'));
    assert.equal(session.inflightCount, 0);
    await session.close('test');
  });

  it('fails an in-flight call at once when the connection to the node drops, naming the node', async () => {
    const events = { lost: [] as string[] };
    const session = await open(events);
    const req = call('hang-drop');
    const pending = session.request(req, CallToolResultSchema, { callId: req.params._meta['flotilla/callId'] as string, signal: new AbortController().signal, timeoutMs: 600_000 });
    await until('the tool to start', () => started.includes('hang-drop'));
    http.closeAllConnections();
    await assert.rejects(pending, (err: unknown) => err instanceof UpstreamFailure && err.kind === 'lost' && err.countsAgainstNode && /node-x/.test(err.reason));
    await session.close('test');
  });

  it('refuses requests once closed', async () => {
    const session = await open();
    await session.close('test');
    const req = call('quick');
    await assert.rejects(
      session.request(req, CallToolResultSchema, { callId: 'x', signal: new AbortController().signal, timeoutMs: 1000 }),
      (err: unknown) => err instanceof UpstreamFailure && err.kind === 'refused',
    );
  });
});
