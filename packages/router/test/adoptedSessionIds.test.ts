/**
 * Request ids of an adopted upstream session. The session on the node outlives the router's object for it:
 * when a node leaves the registry view (a SIGSTOP long enough for its heartbeat to go stale) and comes
 * back, or when another router replica takes the client up, a new `UpstreamSession` adopts the node's
 * session by its id. A node keeps per-session state by request id (an agent drops the late answer to an
 * id it cancelled), so an adopter that numbered its requests from 1 again reused ids the node had seen,
 * and a call whose id had been cancelled there before got no answer: it hung until the client gave up
 * (test/e2e/chaos-stop.test.ts, one `slow_work` call after SIGCONT). Here a node that behaves like an agent
 * with a cancelled call: it never answers a request whose id it cancelled in that session before.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@flotilla/telemetry';
import { Agent } from 'undici';
import type { UpstreamPeer } from '../src/upstream/UpstreamPeer.js';
import { UpstreamSession, type UpstreamSessionDeps } from '../src/upstream/UpstreamSession.js';

const logger = createLogger({ name: 'test', level: 'silent' });

type Id = string | number;

/** Per node session: every request id seen, and the ids the node cancelled (it answers those never again). */
interface NodeSession {
  seen: Id[];
  cancelled: Set<Id>;
}

async function body(req: IncomingMessage): Promise<{ id?: Id; method?: string; params?: { requestId?: Id } }> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: Id; method?: string };
}

describe('an adopted upstream session', () => {
  const sessions = new Map<string, NodeSession>();
  const held: ServerResponse[] = [];
  const dispatchers = { calls: new Agent(), streams: new Agent() };
  let http: HttpServer;
  let url: URL;

  before(async () => {
    http = createServer(async (req, res) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      const message = await body(req);
      const sid = req.headers['mcp-session-id'];
      if (message.method === 'initialize') {
        const id = randomUUID();
        sessions.set(id, { seen: [message.id!], cancelled: new Set() });
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': id });
        return void res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'n', version: '1' } } }));
      }
      const session = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (!session) return void res.writeHead(404).end();
      if (message.id === undefined) {
        if (message.method === 'notifications/cancelled' && message.params?.requestId !== undefined) session.cancelled.add(message.params.requestId);
        return void res.writeHead(202).end();
      }
      session.seen.push(message.id);
      // Like an agent after a cancellation: the answer to a cancelled id is dropped, the request stays open.
      if (session.cancelled.has(message.id) || message.method === 'tools/call') return void held.push(res);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`);
  });

  after(async () => {
    for (const r of held) r.destroy();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await Promise.all([dispatchers.calls.close(), dispatchers.streams.close()]);
  });

  const peer: UpstreamPeer = {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'client', version: '1' },
    sink: { notify: () => {}, ask: async () => ({}) },
  };
  const deps = (): UpstreamSessionDeps => ({ nodeId: 'n1', server: 's', url, dispatchers, peer, logger });

  it('never reuses a request id the node saw in that session, so no answer is dropped as a cancelled one', async () => {
    const first = new UpstreamSession(deps());
    await first.open();
    await first.request('ping', undefined, { signal: AbortSignal.timeout(5000), timeoutMs: 5000 });
    // A call the client gives up on: the node hears it cancelled, and will drop that id's answer.
    const cancel = new AbortController();
    const call = first.request('tools/call', { name: 'work', arguments: {} }, { signal: cancel.signal, timeoutMs: 60_000 });
    const sid = first.sessionId!;
    await until(() => sessions.get(sid)!.seen.length === 3);
    cancel.abort();
    await assert.rejects(call);
    await until(() => sessions.get(sid)!.cancelled.size === 1);
    const known = first.known!;
    await first.close('node left the registry view');

    // The node came back (same instance): the client's session there is adopted, not opened again.
    const adopted = UpstreamSession.adopt(deps(), known);
    for (let i = 0; i < 4; i++) {
      await adopted.request('ping', undefined, { signal: AbortSignal.timeout(2000), timeoutMs: 2000 }).catch((err: unknown) => {
        throw new Error(`request ${i + 1} of the adopted session got no answer (ids the node saw: ${JSON.stringify(sessions.get(sid)!.seen)}): ${String(err)}`);
      });
    }
    const seen = sessions.get(sid)!.seen;
    assert.equal(seen.length, 7);
    assert.equal(new Set(seen).size, seen.length, `request ids reused in one node session: ${JSON.stringify(seen)}`);
    await adopted.close('done');
  });
});

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
