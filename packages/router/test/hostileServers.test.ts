/**
 * A careless or hostile server cannot stall the router or leak through it (issue 11, item 4): its regular
 * expressions run on a linear-time engine, tools whose definitions are too big or too deep are refused
 * with a reason, upstream error text reaches clients and the dashboard only as a status and a short,
 * sanitised reason, and the ops API does not say where nodes are. In-process router, real NATS, test
 * nodes over HTTP, a real SDK client; the same attacks against real processes are in
 * test/e2e/attack-control-plane.test.ts.
 */
import assert from 'node:assert/strict';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '@flotilla/telemetry';
import { CallToolResultSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { parseExposition } from '../../../test/harness/prometheusText.js';
import { OffLoopArgumentValidator, ToolArgumentValidator, ToolSchemaGuard, sanitizeUpstreamText } from '../src/index.js';
import { inProcessMesh } from './fixtures/InProcessMesh.js';
import { HOSTILE_TOOLS, deepSchema } from './fixtures/TestNode.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const REDOS = HOSTILE_TOOLS.find((t) => t.name === 'redos')! as Tool;
/** 32 characters then one that fails the pattern: seconds of backtracking in JavaScript's engine (doubling per character). */
// Backtracking on `^(a+)+$` doubles with every character: 32 take JavaScript's engine 10-15 s, 34 about a
// minute. The bounds below (seconds) are far from that, and far above what a loaded machine adds to a
// linear-time check, so they tell the engines apart without timing the router's speed.
const EVIL = `${'a'.repeat(34)}!`;
/** Longest a check of {@link EVIL} may take: linear-time engines finish in milliseconds. */
const LINEAR_BOUND_MS = 2_000;
const INTERNAL = ['10.0.3.7', 'internal-lb.corp.example', 'db-7:5432', 'fd00::17', '<html', '<h1'];

/** A warn-level logger whose lines a test can read. */
function recordingLogger(): { lines: Array<Record<string, unknown>>; recording: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { lines, recording: createLogger({ name: 'test', level: 'warn', destination }) };
}

function assertClean(text: string, where: string): void {
  for (const leak of INTERNAL) assert.ok(!text.includes(leak), `${where} shows "${leak}": ${text}`);
}

describe('linear-time regular expressions in argument validation', () => {
  it('checks a catastrophic-backtracking pattern against a 33-character argument in milliseconds', () => {
    const validator = new ToolArgumentValidator(logger);
    validator.check(REDOS, { text: 'aaa' }); // compiles
    const started = performance.now();
    const r = validator.check(REDOS, { text: EVIL });
    const ms = performance.now() - started;
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.problems.join(';') : '', /must match pattern/);
    assert.ok(ms < LINEAR_BOUND_MS, `took ${ms.toFixed(1)} ms`);
    assert.deepEqual(validator.check(REDOS, { text: 'a'.repeat(10_000) }), { ok: true });
  });

  it('runs patternProperties on the same engine', () => {
    const validator = new ToolArgumentValidator(logger);
    const tool = { name: 'p', inputSchema: { type: 'object', patternProperties: { '^(x+)+$': { type: 'number' } } } } as unknown as Tool;
    const started = performance.now();
    assert.equal(validator.check(tool, { [`${'x'.repeat(34)}!`]: 'not checked: the name does not match' }).ok, true);
    assert.equal(validator.check(tool, { xxx: 'must be a number' }).ok, false);
    assert.ok(performance.now() - started < LINEAR_BOUND_MS);
  });

  it('leaves a pattern RE2 cannot run (a back-reference) to the node, and says so in the log', () => {
    const { lines, recording } = recordingLogger();
    const validator = new ToolArgumentValidator(recording);
    const tool = { name: 'b', inputSchema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a)\\1$' } } } } as unknown as Tool;
    assert.deepEqual(validator.check(tool, { s: 'ab' }), { ok: true });
    assert.ok(lines.some((l) => l.msg === 'cannot compile the tool input schema; arguments are checked by the node only' && l.tool === 'b'));
  });
});

describe('OffLoopArgumentValidator', () => {
  const BIG_ENUM = HOSTILE_TOOLS.find((t) => t.name === 'bigenum')! as Tool;
  const slowArgs = { xs: Array.from({ length: 3000 }, () => 'not in the enum') };

  it('checks small arguments on the event loop and larger ones on a worker, with the same answers', async () => {
    const validator = new OffLoopArgumentValidator({ budgetMs: 5000, maxPending: 100 }, logger);
    try {
      // The worker's start (a thread, RE2, the schema's compile) is not what is timed: a first check loads it.
      assert.deepEqual(await validator.check(REDOS, { text: 'a'.repeat(2000) }), { ok: true });
      // ~40 bytes against a ~150-byte schema: inline; 2,000 bytes: on the worker. RE2 either way.
      for (const text of [EVIL, `${'a'.repeat(2000)}!`]) {
        const started = performance.now();
        const r = await validator.check(REDOS, { text });
        assert.equal(r.ok, false);
        assert.match(!r.ok ? r.problems.join(';') : '', /must match pattern/);
        assert.ok(performance.now() - started < LINEAR_BOUND_MS);
      }
      assert.deepEqual(await validator.check(REDOS, { text: 'aaa' }), { ok: true });
    } finally {
      await validator.stop();
    }
  });

  it('checks on a worker; a check over its budget lets the call go on unchecked, and the next check works', async () => {
    const reasons: string[] = [];
    const validator = new OffLoopArgumentValidator({ budgetMs: 150, maxPending: 100 }, logger, (r) => reasons.push(r));
    try {
      // Arguments over the in-place bound go to the worker; these load it (its start is not timed).
      assert.deepEqual(await validator.check(REDOS, { text: 'a'.repeat(1000) }), { ok: true });
      const r = await validator.check(REDOS, { text: `${'a'.repeat(1000)}!` });
      assert.equal(r.ok, false);
      const lag = monitorEventLoopDelay({ resolution: 5 });
      lag.enable();
      const started = performance.now();
      const slow = await validator.check(BIG_ENUM, slowArgs);
      const ms = performance.now() - started;
      lag.disable();
      assert.deepEqual(slow, { ok: true, unchecked: 'argument check over its 150 ms budget' });
      // On the event loop this check takes about 10 s; the bounds leave a loaded machine room and still
      // tell a check cut at its budget off the loop from one that ran on it.
      assert.ok(ms < LINEAR_BOUND_MS, `answered after ${ms.toFixed(0)} ms`);
      assert.ok(lag.max / 1e6 < LINEAR_BOUND_MS / 2, `event loop delayed ${(lag.max / 1e6).toFixed(0)} ms`);
      assert.deepEqual(reasons, ['budget']);
      const after = await validator.check(REDOS, { text: 'b'.repeat(1000) });
      assert.equal(after.ok, false, 'a new worker checks the next call');
      assert.deepEqual(await validator.check(BIG_ENUM, { xs: ['v1', 'v2'] }), { ok: true });
    } finally {
      await validator.stop();
    }
  });

  it('lets calls go on unchecked when too many checks wait', async () => {
    const reasons: string[] = [];
    const validator = new OffLoopArgumentValidator({ budgetMs: 5000, maxPending: 2 }, logger, (r) => reasons.push(r));
    try {
      // Arguments too big to check on the event loop: they wait for the worker.
      const big = { text: 'a'.repeat(1000) };
      const checks = [validator.check(REDOS, big), validator.check(REDOS, big), validator.check(REDOS, big)];
      assert.deepEqual(await checks[2], { ok: true, unchecked: 'more than 2 argument checks waiting' });
      assert.deepEqual(await Promise.all(checks.slice(0, 2)), [{ ok: true }, { ok: true }]);
      assert.deepEqual(reasons, ['busy']);
    } finally {
      await validator.stop();
    }
  });
});

describe('ToolSchemaGuard', () => {
  const origin = { nodeId: 'n1', server: 'hostile' };

  it('keeps tools within the bounds, refuses the others with a reason it remembers, logs each once', () => {
    const { lines, recording } = recordingLogger();
    const refusedServers: string[] = [];
    const guard = new ToolSchemaGuard({ maxBytes: 128 * 1024, maxDepth: 32 }, recording, (s) => refusedServers.push(s));
    const kept = guard.admit(HOSTILE_TOOLS as Tool[], origin);
    assert.deepEqual(kept.map((t) => t.name), ['redos', 'plain', 'bigenum']);
    assert.match(guard.refusal('hostile_deep') ?? '', /input schema is nested deeper than 32 levels/);
    assert.match(guard.refusal('hostile_huge') ?? '', /definition is \d+ bytes of JSON \(limit 131072\)/);
    assert.equal(guard.refusal('hostile_plain'), undefined);
    guard.admit(HOSTILE_TOOLS as Tool[], origin);
    assert.deepEqual(refusedServers, ['hostile', 'hostile'], 'counted and logged once per tool, not per listing');
    assert.deepEqual(lines.filter((l) => l.msg === "tool refused: its definition is beyond the router's bounds").map((l) => l.tool), ['deep', 'huge']);
  });

  it('measures a 100,000-level schema without overflowing the stack, and checks output schemas too', () => {
    const guard = new ToolSchemaGuard({ maxBytes: 128 * 1024, maxDepth: 32 }, logger);
    let abyss: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) abyss = { a: abyss };
    const tools = [
      { name: 'abyss', inputSchema: { type: 'object', properties: { x: abyss } } },
      { name: 'out', inputSchema: { type: 'object' }, outputSchema: deepSchema(40) },
      { name: 'ok', inputSchema: deepSchema(15) },
    ] as Tool[];
    assert.deepEqual(guard.admit(tools, origin).map((t) => t.name), ['ok']);
    assert.match(guard.refusal('hostile_out') ?? '', /output schema/);
  });
});

describe('sanitizeUpstreamText', () => {
  it('drops markup, and takes URLs, addresses and host names out of what is left', () => {
    assert.equal(sanitizeUpstreamText('<html><body><h1>502 Bad Gateway</h1>internal-lb.corp.example</body></html>'), undefined);
    assert.equal(sanitizeUpstreamText('<!DOCTYPE html>'), undefined);
    const line = sanitizeUpstreamText('upstream http://10.0.3.7:9000/admin failed\nvia internal-lb.corp.example:8443, db-7:5432 and [fd00::17]:80 or fd00:0:0:0::17 (10.0.3.7)')!;
    assertClean(line, 'the sanitised line');
    assert.equal(line, 'upstream <url> failed via <host>, <host> and <address> or <address> (<address>)');
    assert.equal(sanitizeUpstreamText('2001:db8::1 at 12:30:45'), '<address> at 12:30:45');
    assert.ok(!line.includes('\n'));
  });

  it('keeps ordinary reasons, and cuts long ones', () => {
    assert.equal(sanitizeUpstreamText('node busy: queue full'), 'node busy: queue full');
    assert.equal(sanitizeUpstreamText('Session not found'), 'Session not found');
    assert.equal(sanitizeUpstreamText('x'.repeat(5000))!.length, 200);
    assert.equal(sanitizeUpstreamText('   \n\t '), undefined);
  });
});

describe('a hostile server behind a real router', () => {
  const mesh = inProcessMesh({ h1: ['hostile'], e1: ['echo'] });

  it('lists neither the too-deep nor the too-big tool, tells a caller why, and counts them', async () => {
    const { tools } = await mesh.c.client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('hostile_redos') && names.includes('hostile_plain'), names.join(', '));
    assert.ok(!names.includes('hostile_deep') && !names.includes('hostile_huge'), names.join(', '));
    await assert.rejects(mesh.c.client.callTool({ name: 'hostile_deep', arguments: {} }), /Tool hostile_deep is refused by the router: its input schema is nested deeper than 32 levels/);
    await assert.rejects(mesh.c.client.callTool({ name: 'hostile_huge', arguments: {} }), /Tool hostile_huge is refused by the router: its definition is \d+ bytes/);
    const metrics = parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text());
    assert.equal(metrics.value('flotilla_router_tools_refused_total', { server: 'hostile' }), 2);
    assert.equal(mesh.node('h1').journal.started.length, 0, 'nothing ran on the node');
  });

  it("a ReDoS pattern does not stall the router: the call is answered at once and /healthz keeps answering", async () => {
    // The validation worker has loaded and compiled the schema (its start is not what is measured).
    await mesh.c.client.callTool({ name: 'hostile_redos', arguments: { text: 'aaaa' } });
    const healthz = mesh.router.url.replace('/mcp', '/healthz');
    const probes: number[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t = performance.now();
        assert.equal((await fetch(healthz)).status, 200);
        probes.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 5 }, () => mesh.c.client.callTool({ name: 'hostile_redos', arguments: { text: EVIL } })));
    const ms = performance.now() - started;
    probing = false;
    await prober;
    for (const r of results) {
      const parsed = CallToolResultSchema.parse(r);
      assert.equal(parsed.isError, true);
      assert.match(parsed.content.map((c) => (c.type === 'text' ? c.text : '')).join(''), /must match pattern/);
    }
    assert.ok(ms < 2 * LINEAR_BOUND_MS, `5 calls took ${ms.toFixed(0)} ms`);
    assert.ok(Math.max(...probes) < LINEAR_BOUND_MS, `slowest /healthz ${Math.max(...probes).toFixed(0)} ms`);
    const ok = CallToolResultSchema.parse(await mesh.c.client.callTool({ name: 'hostile_redos', arguments: { text: 'aaaa' } }));
    assert.notEqual(ok.isError, true);
  });

  it('arguments too costly to check within the budget go on to the node unchecked, counted, while /healthz keeps answering', async () => {
    const healthz = mesh.router.url.replace('/mcp', '/healthz');
    const probes: number[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t = performance.now();
        assert.equal((await fetch(healthz)).status, 200);
        probes.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const result = CallToolResultSchema.parse(await mesh.c.client.callTool({ name: 'hostile_bigenum', arguments: { xs: Array.from({ length: 3000 }, () => 'not in the enum') } }));
    probing = false;
    await prober;
    assert.match(result.content.map((c) => (c.type === 'text' ? c.text : '')).join(''), /bigenum ran/);
    assert.ok(Math.max(...probes) < LINEAR_BOUND_MS, `slowest /healthz ${Math.max(...probes).toFixed(0)} ms`);
    const metrics = parseExposition(await (await fetch(mesh.router.url.replace('/mcp', '/metrics'))).text());
    assert.equal(metrics.value('flotilla_router_arguments_unchecked_total', { reason: 'budget' }), 1);
    const checked = CallToolResultSchema.parse(await mesh.c.client.callTool({ name: 'hostile_bigenum', arguments: { xs: ['v1', 'nope'] } }));
    assert.equal(checked.isError, true, 'small arguments are still checked');
  });

  it('an HTML 502 naming internal hosts reaches the client and the dashboard only as its status', async () => {
    const node = mesh.node('e1');
    node.journal.httpFailure = {
      status: 502,
      contentType: 'text/html',
      body: '<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>upstream internal-lb.corp.example (10.0.3.7) db-7:5432 fd00::17</body></html>',
    };
    try {
      const err = await mesh.c.client.callTool({ name: 'echo_say', arguments: { text: 'x' } }).then(
        () => assert.fail('the call should fail'),
        (e: Error) => e,
      );
      assert.match(err.message, /HTTP 502 Bad Gateway/);
      assertClean(err.message, 'the client error');
      // A JSON-RPC error body (what a node's HTTP layer sends) keeps its message, sanitised.
      node.journal.httpFailure = {
        status: 500,
        contentType: 'application/json',
        body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'backend http://10.0.3.7:9000/admin via internal-lb.corp.example is down' } }),
      };
      const err2 = await mesh.c.client.callTool({ name: 'echo_say', arguments: { text: 'x' } }).then(
        () => assert.fail('the call should fail'),
        (e: Error) => e,
      );
      assert.match(err2.message, /HTTP 500 Internal Server Error: backend <url> via <host> is down/);
      assertClean(err2.message, 'the client error');
      const dashboard = await mesh.api<{ failures: Array<{ tool: string; error: string | null }> }>('/api/v1/dashboard');
      const shown = dashboard.failures.filter((f) => f.tool === 'echo_say');
      assert.ok(shown.length >= 2, JSON.stringify(dashboard.failures));
      for (const f of shown) assertClean(f.error ?? '', 'the dashboard');
      assert.ok(shown.some((f) => /HTTP 502 Bad Gateway/.test(f.error ?? '')), JSON.stringify(shown));
    } finally {
      node.journal.httpFailure = undefined;
    }
  });

  it('the ops API and the dashboard do not say where nodes are', async () => {
    const nodes = await (await fetch(mesh.router.url.replace('/mcp', '/api/v1/nodes'))).text();
    const dashboard = await (await fetch(mesh.router.url.replace('/mcp', '/api/v1/dashboard'))).text();
    assert.match(nodes, /"nodeId":"h1"/);
    for (const body of [nodes, dashboard]) {
      assert.ok(!/mcpBaseUrl/.test(body), body.slice(0, 300));
      for (const n of mesh.nodes) assert.ok(!body.includes(new URL(n.url).host), `${n.url} shown`);
    }
  });
});
