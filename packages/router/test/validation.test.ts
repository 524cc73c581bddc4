import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createLogger } from '@flotilla/telemetry';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { HostOriginPolicy, ToolArgumentValidator, listPage, readRequestBody, resolveRouterOptions, type BodyRead } from '../src/index.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const tool = (inputSchema: Record<string, unknown>): Tool => ({ name: 't', inputSchema: inputSchema as Tool['inputSchema'] });

describe('ToolArgumentValidator', () => {
  const validator = new ToolArgumentValidator(logger);
  const schema07 = tool({
    type: 'object',
    properties: { text: { type: 'string' }, times: { type: 'integer', minimum: 1 }, mode: { enum: ['a', 'b'] } },
    required: ['text'],
    additionalProperties: false,
  });

  it('accepts arguments that match the input schema', () => {
    assert.deepEqual(validator.check(schema07, { text: 'hi', times: 2 }), { ok: true });
  });

  it('names a missing required property', () => {
    const r = validator.check(schema07, {});
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.problems.join(';') : '', /must have required property 'text'/);
  });

  it('treats absent arguments as an empty object', () => {
    assert.equal(validator.check(schema07, undefined).ok, false);
    assert.equal(validator.check(tool({ type: 'object' }), undefined).ok, true);
  });

  it('names wrong types, bounds, enum values and unexpected properties, all at once', () => {
    const r = validator.check(schema07, { text: 5, times: 0, mode: 'c', extra: true });
    assert.equal(r.ok, false);
    const text = !r.ok ? r.problems.join('\n') : '';
    assert.match(text, /\/text must be string/);
    assert.match(text, /\/times must be >= 1/);
    assert.match(text, /\/mode must be equal to one of the allowed values/);
    assert.match(text, /must not have additional property 'extra'/);
  });

  it('understands draft 2020-12 schemas as zod 4 emits them', () => {
    const schema = z.toJSONSchema(z.object({ steps: z.number().int().min(1), tags: z.array(z.string()).optional() }));
    assert.match(String(schema.$schema), /2020-12/);
    const t = tool(schema as Record<string, unknown>);
    assert.equal(validator.check(t, { steps: 3, tags: ['x'] }).ok, true);
    const r = validator.check(t, { steps: 0, tags: [1] });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.problems.join(';') : '', /\/steps must be >= 1/);
  });

  it('checks formats', () => {
    const t = tool({ type: 'object', properties: { at: { type: 'string', format: 'date-time' } } });
    assert.equal(validator.check(t, { at: '2024-01-01T00:00:00Z' }).ok, true);
    assert.equal(validator.check(t, { at: 'yesterday' }).ok, false);
  });

  it('lets a schema it cannot compile through (the node still validates)', () => {
    assert.deepEqual(validator.check(tool({ type: 'object', properties: { x: { $ref: '#/nowhere' } } }), { x: 1 }), { ok: true });
  });
});

describe('HostOriginPolicy', () => {
  const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

  it('accepts loopback names with the port by default, and requests without Origin', () => {
    const p = new HostOriginPolicy({ host: '127.0.0.1', port: 8080 });
    for (const host of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'LOCALHOST:8080']) assert.deepEqual(p.check(req({ host })), { ok: true });
    assert.deepEqual(p.check(req({ host: 'localhost:8080', origin: 'http://localhost:8080' })), { ok: true });
  });

  it('refuses other hosts, other ports and foreign origins', () => {
    const p = new HostOriginPolicy({ host: '127.0.0.1', port: 8080 });
    assert.equal(p.check(req({ host: 'evil.example:8080' })).ok, false);
    assert.equal(p.check(req({ host: 'localhost:9090' })).ok, false);
    assert.equal(p.check(req({})).ok, false);
    const r = p.check(req({ host: 'localhost:8080', origin: 'http://evil.example' }));
    assert.deepEqual(r, { ok: false, reason: 'Invalid Origin header: http://evil.example' });
  });

  it('adds a specific listen address and honours configured lists', () => {
    assert.equal(new HostOriginPolicy({ host: '10.0.0.5', port: 80 }).check(req({ host: '10.0.0.5:80' })).ok, true);
    const p = new HostOriginPolicy({ host: '0.0.0.0', port: 80, allowedHosts: ['mcp.example.com'], allowedOrigins: ['https://app.example.com'] });
    assert.equal(p.check(req({ host: 'mcp.example.com', origin: 'https://app.example.com' })).ok, true);
    assert.equal(p.check(req({ host: 'localhost:80' })).ok, false);
  });

  it('allows pages served under an allowed host (a load balancer in front) when no origins are configured', () => {
    const p = new HostOriginPolicy({ host: '127.0.0.1', port: 8080, allowedHosts: ['localhost:9000', 'mcp.example.com'] });
    assert.equal(p.check(req({ host: 'localhost:9000', origin: 'http://localhost:9000' })).ok, true);
    assert.equal(p.check(req({ host: 'mcp.example.com', origin: 'https://mcp.example.com' })).ok, true);
    assert.deepEqual(p.check(req({ host: 'localhost:9000', origin: 'http://localhost:8080' })), { ok: false, reason: 'Invalid Origin header: http://localhost:8080' });
  });
});

describe('listPage', () => {
  it('pages with opaque cursors and rejects invalid ones', () => {
    const items = Array.from({ length: 5 }, (_, i) => i);
    const first = listPage(items, undefined, 2);
    assert.deepEqual(first.items, [0, 1]);
    const second = listPage(items, first.nextCursor, 2);
    assert.deepEqual(second.items, [2, 3]);
    const third = listPage(items, second.nextCursor, 2);
    assert.deepEqual(third, { items: [4] });
    assert.throws(() => listPage(items, 'garbage', 2), /Invalid cursor/);
  });
});

describe('readRequestBody', () => {
  async function post(body: string, limit: number, headers: Record<string, string> = {}): Promise<BodyRead> {
    let result: Promise<BodyRead> | undefined;
    const server = createServer((req, res) => {
      result = readRequestBody(req, limit);
      void result.then(() => res.writeHead(200, { connection: 'close' }).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => {
      const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => resolve());
      req.end(body);
    });
    server.close();
    return result!;
  }

  it('reads a body within the limit', async () => {
    assert.deepEqual(await post('{"a":1}', 100), { kind: 'ok', text: '{"a":1}' });
  });

  it('refuses a declared Content-Length over the limit without reading', async () => {
    assert.deepEqual(await post('x'.repeat(200), 100), { kind: 'too-large', limit: 100 });
  });

  it('stops reading a chunked body once it passes the limit', async () => {
    assert.deepEqual(await post('x'.repeat(5000), 100, { 'transfer-encoding': 'chunked' }), { kind: 'too-large', limit: 100 });
  });
});

describe('resolveRouterOptions', () => {
  it('applies defaults', () => {
    const o = resolveRouterOptions({ natsUrl: 'nats://127.0.0.1:4222' });
    assert.equal(o.port, 8080);
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.prefix, 'flotilla');
    assert.equal(o.strategy, 'progress-aware');
    assert.equal(o.maxAttempts, 3);
    assert.equal(o.retryWindowMs, 30_000);
    assert.equal(o.hedgeReadOnly, false);
    assert.equal(o.maxBodyBytes, 4 * 1024 * 1024);
    assert.equal(o.registryKind, 'nats-kv');
  });

  it('names every wrong option', () => {
    assert.throws(
      () => resolveRouterOptions({ natsUrl: '', port: 70000, strategy: 'random' as 'round-robin' }),
      (err: Error) => /natsUrl/.test(err.message) && /port/.test(err.message) && /strategy/.test(err.message),
    );
  });
});
