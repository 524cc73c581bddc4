import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { FlotillaErrorCode, META_CALL_ID } from '@flotilla/protocol';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { parseExposition } from '../../../test/harness/prometheusText.js';
import { inProcessMesh, type InProcessMesh } from './fixtures/InProcessMesh.js';
import { connectClient, rawPost, until } from './fixtures/mcpClient.js';
import { TEST_SERVERS, type NodeJournal, type TestNode } from './fixtures/TestNode.js';

// The router against real SDK servers announced in a real NATS KV registry, all in this process.
const text = (r: unknown): string => {
  const parsed = CallToolResultSchema.parse(r);
  return parsed.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
};

describe('router (in-process nodes)', () => {
  const mesh = inProcessMesh({ n1: ['echo', 'slow'], n2: ['echo', 'slow'], n3: ['echo', 'interactive', 'docs', 'dynamic'] });

  it('merges the servers of all nodes into one namespaced tool list', async () => {
    const names = (await mesh.c.client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      'docs_touch',
      'dynamic_grow',
      'echo_fail', 'echo_say', 'echo_whoami',
      'interactive_ask', 'interactive_chatty', 'interactive_confirm',
      'slow_steady', 'slow_work',
    ]);
    const api = await mesh.api<{ tools: { name: string; server: string; upstreamName: string; replicas: { nodeId: string }[] }[] }>('/api/v1/tools');
    const say = api.tools.find((t) => t.name === 'echo_say')!;
    assert.equal(say.server, 'echo');
    assert.equal(say.upstreamName, 'say');
    assert.deepEqual(say.replicas.map((r) => r.nodeId), ['n1', 'n2', 'n3']);
    assert.deepEqual(api.tools.find((t) => t.name === 'slow_work')!.replicas.map((r) => r.nodeId), ['n1', 'n2']);
  });

  it('forwards a call and sets a fresh call id and the trace context in _meta', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const before = mesh.nodes.flatMap((n) => n.journal.metas).length;
    const r1 = await mesh.c.client.callTool({ name: 'echo_say', arguments: { text: 'ab', times: 2 }, _meta: { traceparent } });
    const r2 = await mesh.c.client.callTool({ name: 'echo_say', arguments: { text: 'x' } });
    assert.equal(text(r1), 'abab');
    assert.equal(text(r2), 'x');
    const metas = mesh.nodes.flatMap((n) => n.journal.metas).slice(before);
    assert.equal(metas.length, 2);
    const ids = metas.map((m) => m[META_CALL_ID]);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
    assert.notEqual(ids[0], ids[1]);
    const withTrace = metas.find((m) => typeof m.traceparent === 'string');
    assert.ok(withTrace, 'the client traceparent travels upstream');
    assert.match(String(withTrace.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-/);
  });

  it('spreads calls over the replicas', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const node = text(await mesh.c.client.callTool({ name: 'echo_whoami', arguments: {} }));
      seen.set(node, (seen.get(node) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ['n1', 'n2', 'n3']);
  });

  it('forwards progress to the client under its own progress token', async () => {
    const progress: { progress: number; total?: number; message?: string }[] = [];
    const result = await mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 4, delayMs: 20 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    assert.equal(text(result), 'done 4');
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4]);
    assert.equal(progress[3]!.total, 4);
    assert.equal(progress[0]!.message, 'step 1');
  });

  it('cancels the tool on its node when the client cancels', async () => {
    const cancelledBefore = mesh.nodes.reduce((n, x) => n + x.journal.cancelled.length, 0);
    const controller = new AbortController();
    let steps = 0;
    const call = mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 1000, delayMs: 20 } }, undefined, {
      signal: controller.signal,
      onprogress: () => {
        if (++steps === 2) controller.abort('enough');
      },
    });
    await assert.rejects(call);
    await until('the node to see the cancellation', () => mesh.nodes.reduce((n, x) => n + x.journal.cancelled.length, 0) > cancelledBefore);
    await until('no call left in flight', async () => {
      const api = await mesh.api<{ nodes: { outstanding: number }[] }>('/api/v1/nodes');
      return api.nodes.every((n) => n.outstanding === 0);
    });
  });

  it('cancels the tool upstream when the client just drops its connection', async () => {
    const cancelledBefore = mesh.nodes.reduce((n, x) => n + x.journal.cancelled.length, 0);
    const sessionId = mesh.c.transport.sessionId!;
    const controller = new AbortController();
    const res = await fetch(mesh.router.url, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'drop-1', method: 'tools/call', params: { name: 'slow_work', arguments: { steps: 1000, delayMs: 20 }, _meta: { progressToken: 'p1' } } }),
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first progress notification: the tool is running
    controller.abort();
    await until('the node to see the cancellation', () => mesh.nodes.reduce((n, x) => n + x.journal.cancelled.length, 0) > cancelledBefore);
  });

  it('answers DeadlineExceeded when the client deadline passes, and passes the deadline to the node', async () => {
    const deadline = Date.now() + 300;
    await assert.rejects(
      mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 100_000, delayMs: 20 }, _meta: { 'flotilla/deadline': deadline } }),
      (e: McpError) => e.code === FlotillaErrorCode.DeadlineExceeded && /Deadline exceeded for slow_work/.test(e.message),
    );
    const meta = mesh.nodes.flatMap((n) => n.journal.metas).find((m) => m['flotilla/deadline'] === deadline);
    assert.ok(meta, 'the node got the deadline');
    // That very call stops on its node (the tests before cancelled other calls there).
    const callId = meta[META_CALL_ID];
    assert.equal(typeof callId, 'string');
    await until('the node to stop the work', () => mesh.nodes.some((n) => n.journal.cancelledCallIds.includes(callId as string)));
  });

  it('passes a tool error result through as a normal result', async () => {
    const r = await mesh.c.client.callTool({ name: 'echo_fail', arguments: {} });
    assert.equal(r.isError, true);
    assert.equal(text(r), 'it failed');
  });

  it('forwards sampling from the node to the calling client and its answer back', async () => {
    const r = await mesh.c.client.callTool({ name: 'interactive_ask', arguments: { question: 'meaning of life?' } });
    assert.equal(text(r), 'model said: forty-two');
    const req = mesh.c.samplingRequests.at(-1) as { messages: { content: { text: string } }[]; _meta?: Record<string, unknown> };
    assert.equal(req.messages[0]!.content.text, 'meaning of life?');
    assert.equal(req._meta?.[META_CALL_ID], undefined, 'router-internal meta is not leaked to clients');
  });

  it('forwards elicitation from the node to the calling client', async () => {
    const r = await mesh.c.client.callTool({ name: 'interactive_confirm', arguments: {} });
    assert.equal(text(r), 'user accept {"ok":true}');
    assert.equal((mesh.c.elicitationRequests.at(-1) as { message: string }).message, 'Proceed?');
  });

  it('forwards log messages of a call to the calling client, honouring its log level', async () => {
    await mesh.c.client.setLoggingLevel('info');
    const before = mesh.c.logs.length;
    await mesh.c.client.callTool({ name: 'interactive_chatty', arguments: {} });
    await until('log lines', () => mesh.c.logs.length >= before + 2);
    assert.deepEqual(mesh.c.logs.slice(before).map((l) => l.data), ['info line', 'warning line']);
    await mesh.c.client.setLoggingLevel('debug');
  });

  it('routes sampling to the client that made the call, not to another client', async () => {
    const other = await connectClient(mesh.router.url, 'other');
    try {
      const before = mesh.c.samplingRequests.length;
      await other.client.callTool({ name: 'interactive_ask', arguments: { question: 'whose?' } });
      assert.equal(other.samplingRequests.length, 1);
      assert.equal(mesh.c.samplingRequests.length, before);
    } finally {
      await other.close();
    }
  });

  it('reads resources by URI and template, gets prompts and completes arguments', async () => {
    const resources = (await mesh.c.client.listResources()).resources.map((r) => r.uri);
    assert.deepEqual(resources, ['docs://readme']);
    const templates = (await mesh.c.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    assert.deepEqual(templates, ['docs://pages/{name}']);
    const readme = await mesh.c.client.readResource({ uri: 'docs://readme' });
    assert.deepEqual(readme.contents, [{ uri: 'docs://readme', text: 'read me' }]);
    const page = await mesh.c.client.readResource({ uri: 'docs://pages/intro' });
    assert.equal((page.contents[0] as { text: string }).text, 'page intro');
    const prompts = (await mesh.c.client.listPrompts()).prompts.map((p) => p.name);
    assert.deepEqual(prompts, ['docs_summarize']);
    const prompt = await mesh.c.client.getPrompt({ name: 'docs_summarize', arguments: { topic: 'flotilla' } });
    assert.deepEqual(prompt.messages[0]!.content, { type: 'text', text: 'Summarize flotilla' });
    const completion = await mesh.c.client.complete({ ref: { type: 'ref/resource', uri: 'docs://pages/{name}' }, argument: { name: 'name', value: 'in' } });
    assert.deepEqual(completion.completion.values.sort(), ['install', 'intro']);
    await assert.rejects(mesh.c.client.readResource({ uri: 'nope://x' }), (e: McpError) => e.code === ErrorCode.InvalidParams && /Unknown resource: nope:\/\/x/.test(e.message));
  });

  it("holds each client's subscription in that client's own upstream session, so a change there reaches only that client", async () => {
    const other = await connectClient(mesh.router.url, 'other');
    const docs = mesh.nodes[2]!.journal;
    const subscribes = (): number => docs.started.filter((x) => x === 'subscribe docs://readme').length;
    const unsubscribes = (): number => docs.started.filter((x) => x === 'unsubscribe docs://readme').length;
    try {
      const before = { sub: subscribes(), unsub: unsubscribes(), mine: mesh.c.updated.length, theirs: other.updated.length };
      await mesh.c.client.subscribeResource({ uri: 'docs://readme' });
      await other.client.subscribeResource({ uri: 'docs://readme' });
      assert.equal(subscribes() - before.sub, 2, 'one subscription per client session, as each would make directly');
      // The server keeps subscriptions per session: a change made in one session is told in that session.
      assert.equal(text(await mesh.c.client.callTool({ name: 'docs_touch', arguments: {} })), 'notified');
      await until('the subscribed client told', () => mesh.c.updated.length > before.mine);
      assert.deepEqual(mesh.c.updated.slice(before.mine), ['docs://readme']);
      assert.equal(text(await other.client.callTool({ name: 'docs_touch', arguments: {} })), 'notified');
      await until('the other client told', () => other.updated.length > before.theirs);
      assert.deepEqual(mesh.c.updated.slice(before.mine), ['docs://readme'], 'the first client hears nothing of the other session');
      await other.client.unsubscribeResource({ uri: 'docs://readme' });
      await mesh.c.client.unsubscribeResource({ uri: 'docs://readme' });
      assert.equal(unsubscribes() - before.unsub, 2);
      await assert.rejects(mesh.c.client.subscribeResource({ uri: 'nope://x' }), (e: McpError) => e.code === ErrorCode.InvalidParams);
    } finally {
      await other.close();
    }
  });

  it('retries a call refused by a busy node on another replica', async () => {
    // slow_work is on n1 and n2. Each refuses as busy the first attempt of every call, wherever the
    // balancer sends it (its choice depends on what the earlier tests measured), and runs a retry.
    const nodes = [mesh.node('n1'), mesh.node('n2')];
    const metrics = async () => parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text());
    const before = await metrics();
    const marks = nodes.map((n) => ({ refused: n.journal.refusedCallIds.length, ran: n.journal.metas.length }));
    const firstAttempts = new Set<string>();
    for (const n of nodes) n.journal.refuseFirstAttempts = firstAttempts;
    try {
      for (let i = 0; i < 6; i++) assert.equal(text(await mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 1, delayMs: 0 } })), 'done 1');
    } finally {
      for (const n of nodes) n.journal.refuseFirstAttempts = undefined;
    }
    // Every call was refused once, by the node it went to first, and ran on the other one under the same call id.
    const refusedBy = new Map<string, string>();
    const ranOn = new Map<string, string>();
    nodes.forEach((n, i) => {
      for (const id of n.journal.refusedCallIds.slice(marks[i]!.refused)) refusedBy.set(id, n.options.nodeId);
      for (const m of n.journal.metas.slice(marks[i]!.ran)) ranOn.set(String(m[META_CALL_ID]), n.options.nodeId);
    });
    assert.equal(refusedBy.size, 6, `refusals: ${JSON.stringify([...refusedBy])}`);
    assert.deepEqual([...ranOn.keys()].sort(), [...refusedBy.keys()].sort(), 'the refused calls are the calls that ran');
    for (const [id, node] of refusedBy) assert.notEqual(ranOn.get(id), node, `call ${id} ran where it was refused`);
    // The router counted each refusal as a busy attempt followed by a retry.
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => after.sum(name, labels) - before.sum(name, labels);
    assert.equal(delta('flotilla_router_attempts_total', { tool: 'slow_work', result: 'busy' }), 6);
    assert.equal(delta('flotilla_router_retries_total', { tool: 'slow_work', reason: 'busy' }), 6);
    assert.equal(delta('flotilla_router_calls_total', { tool: 'slow_work', outcome: 'ok' }), 6);
  });

  it('answers NoReplica when every replica refuses', async () => {
    mesh.nodes[0]!.journal.busy = true;
    mesh.nodes[1]!.journal.busy = true;
    try {
      await assert.rejects(
        mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 1, delayMs: 0 } }),
        (e: McpError) => e.code === FlotillaErrorCode.NoReplica && /No healthy replica for slow_work/.test(e.message) && /n1 \(busy/.test(e.message),
      );
    } finally {
      mesh.nodes[0]!.journal.busy = false;
      mesh.nodes[1]!.journal.busy = false;
    }
  });

  it('exposes Prometheus metrics of calls, attempts, retries, nodes and HTTP requests', async () => {
    await assert.rejects(mesh.c.client.callTool({ name: 'no_such_tool', arguments: {} }));
    const res = await fetch(mesh.router.url.replace('/mcp', '/metrics'));
    assert.equal(res.status, 200);
    const m = parseExposition(await res.text());
    assert.ok(m.sum('flotilla_router_calls_total', { tool: 'echo_whoami', outcome: 'ok' }) >= 30);
    assert.deepEqual(new Set(m.samples('flotilla_router_calls_total', { tool: 'echo_whoami' }).map((x) => x.labels.node)), new Set(['n1', 'n2', 'n3']));
    assert.ok(m.sum('flotilla_router_calls_total', { tool: 'echo_fail', outcome: 'tool_error' }) >= 1);
    assert.ok(m.sum('flotilla_router_calls_total', { tool: 'slow_work', node: 'none', outcome: 'no_replica' }) >= 1);
    assert.ok(m.sum('flotilla_router_calls_total', { tool: '(unknown)', node: 'none', outcome: 'invalid_request' }) >= 1);
    assert.ok(m.sum('flotilla_router_attempts_total', { tool: 'slow_work', result: 'busy' }) >= 1);
    assert.ok(m.sum('flotilla_router_retries_total', { tool: 'slow_work', reason: 'busy' }) >= 1);
    assert.ok(m.sum('flotilla_router_call_duration_seconds_count', { tool: 'echo_say', outcome: 'ok' }) >= 1);
    for (const node of ['n1', 'n2', 'n3']) {
      assert.equal(m.value('flotilla_router_breaker_state', { node }), 0);
      assert.equal(m.value('flotilla_router_inflight_calls', { node }), 0);
      assert.equal(m.value('flotilla_router_queued_calls', { node }), 0);
    }
    assert.equal(m.value('flotilla_router_catalog_nodes'), 3);
    assert.ok((m.value('flotilla_router_catalog_tools') ?? 0) >= 9);
    assert.equal(m.value('flotilla_router_registry_up'), 1);
    assert.equal(m.value('flotilla_router_nats_connected'), 1);
    assert.ok((m.value('flotilla_router_client_sessions') ?? 0) >= 1);
    assert.ok(m.sum('flotilla_router_http_requests_total', { route: '/mcp', status: '200' }) > 0);
    assert.ok(m.value('flotilla_router_process_resident_memory_bytes')! > 0);
  });

  describe('bad input', () => {
    const headers = (): Record<string, string> => ({ 'mcp-session-id': mesh.c.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' });
    const errorOf = (json: unknown): { code: number; message: string } => (json as { error: { code: number; message: string } }).error;

    it('answers malformed JSON with 400 and a parse error', async () => {
      const r = await rawPost(mesh.router.url, '{"jsonrpc": "2.0", "id": 1, "method": ', headers());
      assert.equal(r.status, 400);
      assert.equal(errorOf(r.json).code, ErrorCode.ParseError);
    });

    it('answers a body that is not JSON-RPC with 400 invalid request', async () => {
      const r = await rawPost(mesh.router.url, '{"hello": "world"}', headers());
      assert.equal(r.status, 400);
      assert.equal(errorOf(r.json).code, ErrorCode.InvalidRequest);
    });

    it('answers an unknown method with method not found', async () => {
      await assert.rejects(mesh.c.client.request({ method: 'tools/explode', params: {} }, z.object({})), (e: McpError) => e.code === ErrorCode.MethodNotFound);
    });

    it('answers an unknown tool with invalid params naming it', async () => {
      await assert.rejects(mesh.c.client.callTool({ name: 'nope_tool', arguments: {} }), (e: McpError) => e.code === ErrorCode.InvalidParams && e.message.includes('Unknown tool: nope_tool'));
    });

    it('answers invalid arguments with a tool error result saying what is wrong (spec 2025-11-25, SEP-1303), and nothing runs', async () => {
      const started = mesh.nodes.reduce((n, node) => n + node.journal.started.length, 0);
      const bad = await mesh.c.client.callTool({ name: 'echo_say', arguments: { text: 7, bogus: true } });
      assert.equal(bad.isError, true);
      assert.match(text(bad), /Invalid arguments for tool echo_say/);
      assert.match(text(bad), /\/text must be string/);
      const r = await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow_work', arguments: { steps: 'many' } } }), headers());
      assert.equal(r.status, 200);
      const result = (r.json as { result: { isError?: boolean; content: Array<{ text: string }> } }).result;
      assert.equal(result.isError, true);
      assert.match(result.content[0]!.text, /must have required property 'delayMs'/);
      assert.equal(mesh.nodes.reduce((n, node) => n + node.journal.started.length, 0), started, 'no node ran anything');
    });

    it('answers an oversized body with 413 and a JSON-RPC error body', async () => {
      const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo_say', arguments: { text: 'x'.repeat(5 * 1024 * 1024) } } });
      const r = await rawPost(mesh.router.url, big, headers());
      assert.equal(r.status, 413);
      assert.equal(errorOf(r.json).code, ErrorCode.InvalidRequest);
      assert.match(errorOf(r.json).message, /exceeds the limit/);
    });

    it('answers a missing session with 400 and an unknown session with 404', async () => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const missing = await rawPost(mesh.router.url, body);
      assert.equal(missing.status, 400);
      assert.match(errorOf(missing.json).message, /Mcp-Session-Id header is required/);
      const unknown = await rawPost(mesh.router.url, body, { 'mcp-session-id': 'no-such-session' });
      assert.equal(unknown.status, 404);
      assert.match(errorOf(unknown.json).message, /Session not found/);
      const get = await fetch(mesh.router.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': 'no-such-session' } });
      assert.equal(get.status, 404);
    });

    it('answers a bad Host or Origin with 403', async () => {
      const origin = await rawPost(mesh.router.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { ...headers(), origin: 'http://evil.example' });
      assert.equal(origin.status, 403);
      assert.match(errorOf(origin.json).message, /Invalid Origin header/);
      const url = new URL(mesh.router.url);
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: url.hostname, port: url.port, path: '/mcp', method: 'POST', headers: { host: `evil.example:${url.port}`, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{}');
      });
      assert.equal(status, 403);
    });

    it('answers a wrong path with 404 and a wrong method with 405', async () => {
      assert.equal((await fetch(mesh.router.url.replace('/mcp', '/nope'))).status, 404);
      const put = await fetch(mesh.router.url, { method: 'PUT', body: '{}' });
      assert.equal(put.status, 405);
      assert.equal(put.headers.get('allow'), 'GET, POST, DELETE');
      assert.equal((await fetch(mesh.router.url.replace('/mcp', '/healthz'), { method: 'POST' })).status, 405);
    });

    it('answers a wrong content type with 415', async () => {
      const r = await fetch(mesh.router.url, { method: 'POST', headers: { 'content-type': 'text/plain', ...headers() }, body: 'hi' });
      assert.equal(r.status, 415);
    });

    it('keeps serving after all of that', async () => {
      assert.equal(text(await mesh.c.client.callTool({ name: 'echo_say', arguments: { text: 'still here' } })), 'still here');
    });
  });

  it('follows a server whose tool list changes at run time, telling clients', async () => {
    const changed = mesh.c.listChanged.tools;
    assert.equal(text(await mesh.c.client.callTool({ name: 'dynamic_grow', arguments: {} })), 'grown_1');
    await until('the new tool in the merged list', async () => (await mesh.c.client.listTools()).tools.some((t) => t.name === 'dynamic_grown_1'));
    await until('tools/list_changed', () => mesh.c.listChanged.tools > changed);
    assert.equal(text(await mesh.c.client.callTool({ name: 'dynamic_grown_1', arguments: {} })), 'grown_1');
  });

  it('serves health, readiness and the node view', async () => {
    const base = mesh.router.url.replace('/mcp', '');
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
    const api = (await (await fetch(`${base}/api/v1/nodes`)).json()) as {
      strategy: string;
      nodes: { nodeId: string; breaker: string; health: string; servers: { name: string; connected: boolean }[] }[];
    };
    assert.equal(api.strategy, 'progress-aware');
    assert.deepEqual(api.nodes.map((n) => n.nodeId), ['n1', 'n2', 'n3']);
    assert.ok(api.nodes.every((n) => n.breaker === 'closed' && n.health === 'passing' && n.servers.every((s) => s.connected)));
  });

  it('sends no new calls to a draining node', async () => {
    await mesh.nodes[1]!.drain();
    await until('the router to see n2 draining', async () => {
      const api = await mesh.api<{ nodes: { nodeId: string; draining: boolean }[] }>('/api/v1/nodes');
      return api.nodes.find((n) => n.nodeId === 'n2')?.draining === true;
    });
    const n2 = mesh.node('n2');
    const startedOnN2 = n2.journal.started.length;
    const served: string[] = [];
    for (let i = 0; i < 20; i++) served.push(text(await mesh.c.client.callTool({ name: 'echo_whoami', arguments: {} })));
    // The other replicas answer every call (how the balancer splits them between n1 and n3 is its choice).
    assert.deepEqual(served.filter((n) => n !== 'n1' && n !== 'n3'), [], served.join(','));
    assert.deepEqual(n2.journal.started.slice(startedOnN2), [], 'n2 was sent no call');
  });
});

describe('router (nodes leaving)', () => {
  // These tests pin a call's first attempt by making other replicas busy, which relies on the
  // deterministic order of least-outstanding (the sampling strategies pick at random).
  const mesh = inProcessMesh({ stable: ['echo', 'slow'], doomed: ['slow', 'docs'], doomed2: ['slow'] }, { strategy: 'least-outstanding' });

  it('runs an idempotent call again on another replica when its node dies mid-call, keeping progress increasing', async () => {
    // Pin the first attempt to doomed2: the other replicas refuse as busy until it runs.
    mesh.node('stable').journal.busy = true;
    mesh.node('doomed').journal.busy = true;
    const progress: number[] = [];
    let killed: Promise<void> | undefined;
    const result = await mesh.c.client.callTool({ name: 'slow_steady', arguments: { steps: 4, delayMs: 30 } }, undefined, {
      timeout: 120_000,
      onprogress: (p) => {
        progress.push(p.progress);
        if (p.progress === 3 && !killed) {
          mesh.node('stable').journal.busy = false;
          killed = mesh.node('doomed2').kill();
        }
      },
    });
    mesh.node('doomed').journal.busy = false;
    await killed;
    assert.match(text(result), /^steady 4 on (stable|doomed)$/);
    assert.equal(mesh.node('doomed2').journal.finished.includes('steady'), false);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]! > progress[i - 1]!, `progress went back: ${progress.join(',')}`);
    assert.equal(progress.at(-1), 4);
  });

  it('fails an in-flight call on a node that dies, naming the node, and drops the node from the catalog', async () => {
    // Pin the call to the doomed node by making the other replica busy.
    mesh.node('stable').journal.busy = true;
    const promptsChanged = mesh.c.listChanged.prompts;
    let killed: Promise<void> | undefined;
    const call = mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 10_000, delayMs: 20 } }, undefined, {
      timeout: 120_000,
      onprogress: (p) => {
        if (p.progress === 2) killed ??= mesh.node('doomed').kill();
      },
    });
    await assert.rejects(call, (e: McpError) => e.code === FlotillaErrorCode.NodeFailed && /Node doomed failed while running slow_work/.test(e.message));
    mesh.node('stable').journal.busy = false;
    await killed;
    await until('list_changed for the prompts the dead node offered', () => mesh.c.listChanged.prompts > promptsChanged);
    assert.deepEqual((await mesh.c.client.listPrompts()).prompts, []);
    // The connection loss failed the call at once; the registry drops the node once its heartbeat is stale.
    await until('the dead node to leave the node view', async () => {
      const api = await mesh.api<{ nodes: { nodeId: string }[] }>('/api/v1/nodes');
      return api.nodes.length === 1 && api.nodes[0]!.nodeId === 'stable';
    });
    assert.equal(text(await mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 1, delayMs: 0 } })), 'done 1');
  });

  it('reports not ready once no node is left', async () => {
    await mesh.node('stable').stop();
    await until('not ready', async () => (await fetch(mesh.router.url.replace('/mcp', '/readyz'))).status === 503);
    const body = await mesh.api<{ ready: boolean; reasons: string[] }>('/readyz');
    assert.equal(body.ready, false);
    assert.deepEqual(body.reasons, ['no nodes registered']);
    await assert.rejects(mesh.c.client.callTool({ name: 'slow_work', arguments: { steps: 1, delayMs: 0 } }), (e: McpError) => e.code === ErrorCode.InvalidParams);
  });
});

/**
 * A client's subscription to `docs://readme`, held on one of two replicas, moves to the other when its node
 * goes, and its updates reach the client from there (each case on a mesh of its own): `go` is how the node
 * goes, `check` what else the case asserts once the subscription moved.
 */
function subscriptionMoves(what: string, title: string, go: (holder: TestNode, survivor: TestNode) => Promise<void>, check?: (survivor: TestNode) => void): void {
  describe(`router (${what})`, () => {
    const mesh = inProcessMesh({ d1: ['docs'], d2: ['docs'] });

    it(title, async () => {
      await mesh.c.client.subscribeResource({ uri: 'docs://readme' });
      const subscribedOn = (n: TestNode): boolean => n.journal.started.includes('subscribe docs://readme');
      const holder = mesh.nodes.find(subscribedOn)!;
      const survivor = mesh.nodes.find((n) => n !== holder)!;
      assert.ok(holder && !subscribedOn(survivor));
      await go(holder, survivor);
      await until('the subscription on the surviving replica', () => subscribedOn(survivor));
      check?.(survivor);
      assert.equal(text(await mesh.c.client.callTool({ name: 'docs_touch', arguments: {} })), 'notified');
      await until('the client told', () => mesh.c.updated.includes('docs://readme'));
    });
  });
}

subscriptionMoves('resource subscriptions across replicas', 'moves a subscription to another replica when its node dies', (holder) => holder.kill());
// The registry says the node left before anything breaks on the wire (the order a SIGKILL may take too).
subscriptionMoves('a subscription whose node leaves the registry', 'moves it to another replica even while the connection to the node that left is still up', (holder) =>
  holder.deregister(),
);
subscriptionMoves(
  'a subscription that cannot be placed again at once',
  'tries again when the first attempts to place it elsewhere fail',
  async (holder, survivor) => {
    survivor.journal.failSubscribes = 2;
    await holder.kill();
  },
  (survivor) => assert.equal(survivor.journal.failSubscribes, 0, 'both refused attempts were made'),
);

describe('router (a server that asks the moment its session is initialized)', () => {
  const mesh = inProcessMesh({ a1: ['asker'] });

  it('gets its answer: the standalone stream is open before notifications/initialized', async () => {
    const journal = mesh.node('a1').journal;
    // The router's listing session declares roots (none): the question must reach it, not wait out its timeout.
    assert.equal(await until('the answer to roots/list', () => journal.rootsAnswers[0], 10_000), 'roots 0');
  });
});

/**
 * A client's subscription to `docs://readme` is being moved (its node died), the surviving replica holding
 * the move's subscribe until the test calls `release`; then `during` runs (each case on a mesh of its own).
 */
function whileSubscriptionMoves(what: string, title: string, during: (mesh: InProcessMesh, survivor: TestNode, release: () => void) => Promise<void>): void {
  describe(`router (${what})`, () => {
    const mesh = inProcessMesh({ d1: ['docs'], d2: ['docs'] });

    it(title, async () => {
      await mesh.c.client.subscribeResource({ uri: 'docs://readme' });
      const holder = mesh.nodes.find((n) => n.journal.started.includes('subscribe docs://readme'))!;
      const survivor = mesh.nodes.find((n) => n !== holder)!;
      let release!: () => void;
      survivor.journal.holdSubscribes = new Promise<void>((r) => (release = r));
      await holder.kill();
      await until('the move to reach the surviving replica', () => survivor.journal.heldSubscribes > 0);
      await during(mesh, survivor, release);
    });
  });
}

whileSubscriptionMoves('a client unsubscribes while its subscription is being moved', 'does not leave the subscription on the replica that took it up', async (mesh, survivor, release) => {
  await mesh.c.client.unsubscribeResource({ uri: 'docs://readme' });
  release();
  await until('the subscription ended there again', () => survivor.journal.started.includes('unsubscribe docs://readme'));
  assert.equal(text(await mesh.c.client.callTool({ name: 'docs_touch', arguments: {} })), 'nobody subscribed here');
  assert.equal(mesh.c.updated.includes('docs://readme'), false, 'the client was told of a resource it unsubscribed from');
});

whileSubscriptionMoves('a client subscribes anew while its old subscription is being moved', 'keeps the new subscription where both landed', async (mesh, survivor, release) => {
  await mesh.c.client.unsubscribeResource({ uri: 'docs://readme' });
  const resubscribed = mesh.c.client.subscribeResource({ uri: 'docs://readme' });
  await until("the client's own subscribe to reach it too", () => survivor.journal.heldSubscribes > 1);
  release();
  await resubscribed;
  // Whatever order the two subscribes end in, the one the client made last is the one that stays.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(text(await mesh.c.client.callTool({ name: 'docs_touch', arguments: {} })), 'notified');
  await until('the client told', () => mesh.c.updated.includes('docs://readme'));
});

/** Answers of `held_wait` calls, by key: a call answers once the test releases its key. */
const holds = new Map<string, () => void>();

/** `held`: `wait` answers when the test releases its key; not idempotent, so a lost call is not run again. */
TEST_SERVERS.held = (journal: NodeJournal) => {
  const s = new McpServer({ name: 'held', version: '1.0.0' });
  s.registerTool('wait', { description: 'Answers once the test releases it', inputSchema: { key: z.string() } }, async ({ key }, extra) => {
    journal.started.push(`wait ${key}`);
    await new Promise<void>((resolve) => {
      holds.set(key, resolve);
      extra.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    journal.finished.push(`wait ${key}`);
    return { content: [{ type: 'text', text: `released ${key}` }] };
  });
  return s;
};

describe('router (a node that leaves while draining)', () => {
  const mesh = inProcessMesh({ d: ['held'], s: ['echo'] });

  it('retires it: out of the catalog at once, while its calls in flight get 5 s to bring their answers home', async () => {
    const d = mesh.node('d');
    const call = (key: string) => mesh.c.client.callTool({ name: 'held_wait', arguments: { key } }, undefined, { timeout: 60_000 });
    const quick = call('quick');
    const late = call('late').then(
      () => assert.fail('a call still running 5 s after its node left was answered'),
      (err: unknown) => ({ err, at: performance.now() }),
    );
    try {
      await until('both calls running on d', () => holds.has('quick') && holds.has('late'));
      await d.drain();
      await until('the router to see d draining', async () => (await mesh.api<{ nodes: { nodeId: string; draining: boolean }[] }>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'd')?.draining === true);
      // The drained node deregisters (as an agent does after its last answer) while both calls still run there.
      const leftAt = performance.now();
      await d.deregister();
      await until('d out of the node view and its tool out of the catalog', async () => {
        const { nodes } = await mesh.api<{ nodes: { nodeId: string }[] }>('/api/v1/nodes');
        const { tools } = await mesh.api<{ tools: { name: string }[] }>('/api/v1/tools');
        return !nodes.some((n) => n.nodeId === 'd') && !tools.some((t) => t.name === 'held_wait');
      });
      await assert.rejects(call('after'), (e: McpError) => e.code === ErrorCode.InvalidParams && /Unknown tool: held_wait/.test(e.message));
      // An answer sent after the node left, within the grace, reaches the client.
      holds.get('quick')!();
      assert.equal(text(await quick), 'released quick');
      // A call still running when the grace is over fails then, not before, naming the node.
      const { err, at } = await late;
      assert.ok(err instanceof McpError && err.code === FlotillaErrorCode.NodeFailed && /Node d failed while running held_wait/.test(err.message), String(err));
      const afterMs = at - leftAt;
      // From before the deregistration, so never less than the grace (timers do not fire early); the upper
      // bound only tells 5 s from a much longer grace, with room for a loaded machine.
      assert.ok(afterMs >= 4_990 && afterMs < 15_000, `the call failed ${Math.round(afterMs)} ms after its node left`);
    } finally {
      for (const release of holds.values()) release();
    }
  });
});
