/**
 * The router's Prometheus metrics against docs/observability.md, with real `flotilla router` and
 * `flotilla agent` processes on a real nats-server: every documented family is there with its type and
 * labels, counters move by exactly what the calls did (ok, tool error, unknown tool, invalid arguments, a
 * failover after a node was killed mid-call), gauges tell the catalog, sessions and connections, and
 * `flotilla_router_nats_connected` follows a nats-server restart down and up.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { connectClient, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { eventually } from '../harness/eventually.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { parseExposition, type Exposition } from '../harness/prometheusText.js';

interface NodesView {
  nodes: { nodeId: string; outstanding: number }[];
}

let mesh: FlotillaMesh;
let client: TestClient;

async function scrape(): Promise<Exposition> {
  const res = await fetch(mesh.opsUrl('/metrics'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** How much a series (the sum of the samples of `name` whose labels include `labels`) moved between two scrapes. */
function moved(before: Exposition, afterwards: Exposition, name: string, labels: Record<string, string> = {}): number {
  return afterwards.sum(name, labels) - before.sum(name, labels);
}

/** Asserts how much each series moved between two scrapes: rows of name, labels and the expected move. */
function assertMoved(before: Exposition, afterwards: Exposition, expected: Array<[string, Record<string, string>, number]>): void {
  const series = (name: string, labels: Record<string, string>): string => `${name}${JSON.stringify(labels)}`;
  assert.deepEqual(
    expected.map(([name, labels]) => [series(name, labels), moved(before, afterwards, name, labels)]),
    expected.map(([name, labels, by]) => [series(name, labels), by]),
  );
}

/** The router's rows of docs/observability.md: name → type and label names. */
async function documentedRouterMetrics(): Promise<Map<string, { type: string; labels: string[] }>> {
  const doc = await readFile(new URL('../../docs/observability.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('### Router ('), doc.indexOf('Router label values'));
  const rows = new Map<string, { type: string; labels: string[] }>();
  for (const m of section.matchAll(/^\| `(flotilla_router_[a-z_]+)` \| (\w+) \| ([^|]+) \|/gm)) {
    const labels = m[3]!.trim() === '—' ? [] : m[3]!.split(',').map((l) => l.trim());
    rows.set(m[1]!, { type: m[2]!, labels });
  }
  return rows;
}

before(async () => {
  mesh = await FlotillaMesh.start();
  await mesh.startRouter();
  await mesh.startAgents({
    m1: ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow', 'failing=@flotilla/examples/failing'],
    m2: ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow'],
  });
  await mesh.waitForCatalog({ slow_work: ['m1', 'm2'], failing_fail: ['m1'] });
  client = await mesh.connectClient('metrics-test');
});

after(() => mesh?.stop());

describe('router /metrics', () => {
  it('exposes every documented router family with its documented type and labels', async () => {
    const documented = await documentedRouterMetrics();
    assert.ok(documented.size >= 16, `read ${documented.size} router metrics from the docs`);
    // Touch the labelled counters so their label sets show in samples.
    await client.client.callTool({ name: 'echo_echo', arguments: { text: 'warm up' } });
    const m = await scrape();
    for (const [name, doc] of documented) {
      const family = m.families.get(name);
      assert.ok(family, `${name} is documented but not exposed`);
      assert.equal(family.type, doc.type, `type of ${name}`);
      for (const s of family.samples) {
        const labels = Object.keys(s.labels).filter((l) => !(doc.type === 'histogram' && l === 'le')).sort();
        assert.deepEqual(labels, [...doc.labels].sort(), `labels of ${s.name}`);
      }
    }
    // And nothing undocumented under the router's own names (prom-client's process_/nodejs_ defaults aside).
    for (const name of m.families.keys()) {
      if (/^flotilla_router_(process|nodejs)_/.test(name)) continue;
      assert.ok(documented.has(name), `${name} is exposed but not documented in docs/observability.md`);
    }
  });

  it('tells the catalog, nodes, sessions and connections in its gauges', async () => {
    const tools = (await (await fetch(mesh.opsUrl('/api/v1/tools'))).json()) as { tools: unknown[] };
    const m = await scrape();
    assert.equal(m.value('flotilla_router_catalog_tools'), tools.tools.length);
    assert.equal(m.value('flotilla_router_catalog_nodes'), 2);
    assert.equal(m.value('flotilla_router_registry_up'), 1);
    assert.equal(m.value('flotilla_router_nats_connected'), 1);
    assert.ok(m.value('flotilla_router_client_sessions')! >= 1);
    for (const node of ['m1', 'm2']) {
      assert.equal(m.value('flotilla_router_inflight_calls', { node }), 0);
      assert.equal(m.value('flotilla_router_queued_calls', { node }), 0);
      assert.equal(m.value('flotilla_router_breaker_state', { node }), 0);
      const age = m.value('flotilla_router_node_report_age_seconds', { node });
      assert.ok(age !== undefined && age >= 0 && age < 30, `report age of ${node}: ${age}`);
    }
    const second = await connectClient(mesh.routerUrl, 'metrics-test-2');
    try {
      await eventually(async () => assert.equal((await scrape()).value('flotilla_router_client_sessions'), m.value('flotilla_router_client_sessions')! + 1));
    } finally {
      await second.close();
    }
  });

  it('counts calls, attempts and durations by exactly what the calls did', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) await client.client.callTool({ name: 'echo_echo', arguments: { text: `n${i}` } });
    const failed = await client.client.callTool({ name: 'failing_fail', arguments: { reason: 'metrics' } });
    assert.equal(failed.isError, true);
    await assert.rejects(client.client.callTool({ name: 'no_such_tool', arguments: {} }), /Unknown tool/);
    const invalid = await client.client.callTool({ name: 'echo_echo', arguments: { text: 42 } });
    assert.equal(invalid.isError, true, 'invalid arguments are a tool error result (spec 2025-11-25)');
    const afterwards = await scrape();
    assertMoved(before, afterwards, [
      ['flotilla_router_calls_total', { tool: 'echo_echo', outcome: 'ok' }, 3],
      ['flotilla_router_attempts_total', { tool: 'echo_echo', result: 'ok' }, 3],
      ['flotilla_router_call_duration_seconds_count', { tool: 'echo_echo', outcome: 'ok' }, 3],
      ['flotilla_router_calls_total', { tool: 'failing_fail', node: 'm1', outcome: 'tool_error' }, 1],
      ['flotilla_router_attempts_total', { tool: 'failing_fail', node: 'm1', result: 'tool_error' }, 1],
      ['flotilla_router_call_duration_seconds_count', { tool: 'failing_fail', outcome: 'tool_error' }, 1],
      ['flotilla_router_calls_total', { tool: '(unknown)', node: 'none', outcome: 'invalid_request' }, 1],
      ['flotilla_router_calls_total', { tool: 'echo_echo', node: 'none', outcome: 'invalid_request' }, 1],
      ['flotilla_router_attempts_total', {}, 4],
      ['flotilla_router_retries_total', {}, 0],
      ['flotilla_router_failovers_total', {}, 0],
    ]);
    // The echo calls were spread: per node, calls and attempts agree.
    for (const node of ['m1', 'm2']) {
      const calls = moved(before, afterwards, 'flotilla_router_calls_total', { tool: 'echo_echo', node, outcome: 'ok' });
      const attempts = moved(before, afterwards, 'flotilla_router_attempts_total', { tool: 'echo_echo', node, result: 'ok' });
      assert.equal(calls, attempts, `echo_echo on ${node}`);
    }
  });

  it('counts HTTP requests by route and status', async () => {
    const before = await scrape();
    await fetch(mesh.opsUrl('/healthz'));
    await fetch(mesh.opsUrl('/healthz'));
    await fetch(mesh.opsUrl('/no-such-page'));
    await fetch(mesh.opsUrl('/dashboard'));
    await fetch(mesh.opsUrl('/api/v1/dashboard'));
    await eventually(async () =>
      assertMoved(before, await scrape(), [
        ['flotilla_router_http_requests_total', { route: '/healthz', status: '200' }, 2],
        ['flotilla_router_http_requests_total', { route: 'other', status: '404' }, 1],
        ['flotilla_router_http_requests_total', { route: '/dashboard', status: '200' }, 1],
        ['flotilla_router_http_requests_total', { route: '/api/v1', status: '200' }, 1],
      ]),
    );
  });

  it('counts a failover after a node dies in the middle of a call, and drops the dead node\'s gauges', async () => {
    const before = await scrape();
    let killed: string | undefined;
    let killing: Promise<void> | undefined;
    const result = await client.client.callTool({ name: 'slow_work', arguments: { steps: 40, stepMs: 50 } }, undefined, {
      timeout: 120_000,
      onprogress: () => {
        // At the first progress the call runs on one node: kill that one (once).
        killing ??= (async () => {
          const view = (await (await fetch(mesh.opsUrl('/api/v1/nodes'))).json()) as NodesView;
          killed = view.nodes.find((n) => n.outstanding > 0)?.nodeId;
          assert.ok(killed, 'a node runs the call');
          mesh.agent(killed).signal('SIGKILL');
        })();
      },
    });
    await killing;
    assert.deepEqual(result.content, [{ type: 'text', text: 'done: 40 steps of 50 ms' }]);
    const survivor = killed === 'm1' ? 'm2' : 'm1';
    assertMoved(before, await scrape(), [
      ['flotilla_router_attempts_total', { tool: 'slow_work', node: killed!, result: 'node_lost' }, 1],
      ['flotilla_router_attempts_total', { tool: 'slow_work', node: survivor, result: 'ok' }, 1],
      ['flotilla_router_failovers_total', { tool: 'slow_work', reason: 'node_lost' }, 1],
      ['flotilla_router_retries_total', {}, 0],
      ['flotilla_router_calls_total', { tool: 'slow_work', node: survivor, outcome: 'ok' }, 1],
      ['flotilla_router_calls_total', { tool: 'slow_work', outcome: 'error' }, 0],
    ]);
    await eventually(async () => {
      const m = await scrape();
      assert.equal(m.value('flotilla_router_catalog_nodes'), 1);
      assert.deepEqual(m.samples('flotilla_router_inflight_calls').map((s) => s.labels.node), [survivor]);
      assert.deepEqual(m.samples('flotilla_router_breaker_state').map((s) => s.labels.node), [survivor]);
    }, 15_000);
  });

  it('follows the NATS connection: 0 while nats-server is down, 1 once it is back; readiness says why', async () => {
    /** Waits until the gauges of the NATS connection and of the registry both read `value`. */
    const natsGaugesRead = (value: number, timeoutMs: number): Promise<void> =>
      eventually(async () => {
        const m = await scrape();
        assert.equal(m.value('flotilla_router_nats_connected'), value);
        assert.equal(m.value('flotilla_router_registry_up'), value);
      }, timeoutMs);

    await mesh.nats.stop();
    await natsGaugesRead(0, 15_000);
    const down = await fetch(mesh.opsUrl('/readyz'));
    assert.equal(down.status, 503);
    const body = (await down.json()) as { ready: boolean; reasons: string[]; warnings: string[]; nats: { connected: boolean } };
    assert.equal(body.nats.connected, false);
    assert.ok(body.reasons.some((r) => /registry \(nats-kv\) unreachable/.test(r)), JSON.stringify(body.reasons));
    assert.ok(body.warnings.some((w) => /NATS disconnected/.test(w)), JSON.stringify(body.warnings));

    await mesh.nats.restart();
    await natsGaugesRead(1, 30_000);
    await eventually(async () => assert.equal((await fetch(mesh.opsUrl('/readyz'))).status, 200), 30_000);
    assert.equal((await fetch(mesh.opsUrl('/healthz'))).status, 200);
  });
});
