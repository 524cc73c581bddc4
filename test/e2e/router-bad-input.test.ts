/**
 * Bad input at the router's front, against a real `flotilla router` process with one agent: each case
 * gets the right HTTP status and JSON-RPC error with a message, and the router keeps serving.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { CallToolResultSchema, ErrorCode, type McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { connectClient, rawPost, until, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';

let nats: NatsServerProcess;
let router: FlotillaProcess;
let agent: FlotillaProcess;
let routerUrl: string;
let c: TestClient;

const sessionHeaders = (): Record<string, string> => ({ 'mcp-session-id': c.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' });
const textOf = (r: Record<string, unknown>): string => ((r["content"] as Array<{ type: string; text?: string }> | undefined) ?? []).map((c) => c.text ?? '').join(' ');
const errorOf = (json: unknown): { code: number; message: string } => (json as { error: { code: number; message: string } }).error;
const text = (r: unknown): string => CallToolResultSchema.parse(r).content.map((x) => (x.type === 'text' ? x.text : '')).join('');

before(async () => {
  nats = await NatsServerProcess.start();
  router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0', '--max-body', String(64 * 1024)]);
  routerUrl = String((await router.ready()).url);
  agent = FlotillaProcess.spawn('b1', ['agent', '--node-id', 'b1', '--server', 'echo=@flotilla/examples/echo', '--server', 'slow=@flotilla/examples/slow', '--nats', nats.url, '--port', '0', '--grpc-port', '0']);
  await agent.ready(60_000);
  c = await connectClient(routerUrl);
  await until('the agent tools', async () => (await c.client.listTools()).tools.some((t) => t.name === 'slow_work'), 60_000);
});

after(async () => {
  await c?.close().catch(() => {});
  await Promise.all([router, agent].filter(Boolean).map((p) => p.stop()));
  await nats?.dispose();
});

describe('router front, bad input', () => {
  it('malformed JSON: 400 with a JSON-RPC parse error', async () => {
    const r = await rawPost(routerUrl, '{"jsonrpc":"2.0","id":1,', sessionHeaders());
    assert.equal(r.status, 400);
    assert.equal(errorOf(r.json).code, ErrorCode.ParseError);
    assert.match(errorOf(r.json).message, /Parse error/);
  });

  it('JSON that is not JSON-RPC: 400 invalid request', async () => {
    const r = await rawPost(routerUrl, '[]', sessionHeaders());
    assert.equal(r.status, 400);
    assert.equal(errorOf(r.json).code, ErrorCode.InvalidRequest);
  });

  it('unknown method: method not found', async () => {
    await assert.rejects(c.client.request({ method: 'tools/frobnicate', params: {} }, z.object({})), (e: McpError) => e.code === ErrorCode.MethodNotFound);
  });

  it('unknown tool: invalid params "Unknown tool: X"', async () => {
    await assert.rejects(c.client.callTool({ name: 'nope_nothing', arguments: {} }), (e: McpError) => e.code === ErrorCode.InvalidParams && /Unknown tool: nope_nothing/.test(e.message));
  });

  it('invalid arguments: a tool error result saying what was wrong (spec 2025-11-25, SEP-1303)', async () => {
    const wrongType = await c.client.callTool({ name: 'echo_echo', arguments: { text: 42 } });
    assert.equal(wrongType.isError, true);
    assert.match(textOf(wrongType), /Invalid arguments for tool echo_echo/);
    assert.match(textOf(wrongType), /\/text must be string/);
    const outOfRange = await c.client.callTool({ name: 'slow_work', arguments: { steps: 0 } });
    assert.equal(outOfRange.isError, true);
    assert.match(textOf(outOfRange), /\/steps must be >= 1/);
  });

  it('oversized body: 413 with a JSON-RPC error body', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo_echo', arguments: { text: 'x'.repeat(100 * 1024) } } });
    const r = await rawPost(routerUrl, body, sessionHeaders());
    assert.equal(r.status, 413);
    assert.equal(errorOf(r.json).code, ErrorCode.InvalidRequest);
    assert.match(errorOf(r.json).message, /exceeds the limit of 65536 bytes/);
  });

  it('missing session: 400; unknown session: 404; both with JSON-RPC error bodies', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const missing = await rawPost(routerUrl, body);
    assert.equal(missing.status, 400);
    assert.match(errorOf(missing.json).message, /Mcp-Session-Id header is required/);
    const unknown = await rawPost(routerUrl, body, { 'mcp-session-id': 'not-a-session' });
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown.json).code, -32001);
    const del = await fetch(routerUrl, { method: 'DELETE', headers: { 'mcp-session-id': 'not-a-session' } });
    assert.equal(del.status, 404);
  });

  it('bad Host or Origin: 403', async () => {
    const origin = await rawPost(routerUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { ...sessionHeaders(), origin: 'https://attacker.example' });
    assert.equal(origin.status, 403);
    assert.match(errorOf(origin.json).message, /Invalid Origin header: https:\/\/attacker.example/);
    const url = new URL(routerUrl);
    const hostStatus = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/mcp', method: 'POST', headers: { host: 'rebound.example', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    });
    assert.equal(hostStatus, 403);
  });

  it('wrong path: 404; wrong method: 405', async () => {
    assert.equal((await fetch(routerUrl.replace('/mcp', '/mcp2'))).status, 404);
    const patch = await fetch(routerUrl, { method: 'PATCH', body: '{}' });
    assert.equal(patch.status, 405);
    assert.equal(errorOf(await patch.json()).code, ErrorCode.ConnectionClosed);
  });

  it('keeps serving', async () => {
    assert.equal(text(await c.client.callTool({ name: 'echo_echo', arguments: { text: 'fine' } })), 'fine');
    assert.equal((await fetch(routerUrl.replace('/mcp', '/healthz'))).status, 200);
    assert.equal(router.child.exitCode, null);
  });

  it('stops cleanly on SIGTERM, closing client sessions', async () => {
    router.signal('SIGTERM');
    const { code } = await router.exited;
    assert.equal(code, 0);
    assert.ok(router.lines.some((l) => l.msg === 'router stopped'));
    assert.ok(router.lines.some((l) => l.msg === 'client session closed'));
  });
});
