/**
 * The agent's Prometheus endpoint: a valid exposition with exactly the metrics docs/observability.md
 * documents, and counters and gauges that move by exactly what the calls made (ok, tool error, unknown
 * tool, busy refusal, cancellation, deadline, draining refusal).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FlotillaErrorCode, META_CALL_ID, META_DEADLINE } from '@flotilla/protocol';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { eventually } from '../../../test/harness/eventually.js';
import { parseExposition, type Exposition } from '../../../test/harness/prometheusText.js';
import { closeClient, connectClient, startTestAgent, type TestAgent } from './support/agentFixture.js';

const SLOW = fileURLToPath(new URL('../../examples/src/slow.ts', import.meta.url));
const FAILING = fileURLToPath(new URL('../../examples/src/failing.ts', import.meta.url));
const DOC = fileURLToPath(new URL('../../../docs/observability.md', import.meta.url));
const CALLS = 'flotilla_agent_calls_total';
const DURATION_COUNT = 'flotilla_agent_call_duration_seconds_count';
const QUEUE_WAIT_COUNT = 'flotilla_agent_queue_wait_seconds_count';

let nats: NatsServerProcess;
let t: TestAgent;

async function scrape(agent = t.agent): Promise<Exposition> {
  const res = await fetch(`${agent.url}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await res.text());
}

/** The metric table of one component in docs/observability.md: name → type. */
async function documentedMetrics(component: 'agent' | 'router'): Promise<Map<string, string>> {
  const doc = await readFile(DOC, 'utf8');
  const rows = [...doc.matchAll(/^\| `(flotilla_[a-z0-9_]+)` \| (counter|gauge|histogram) \|/gm)];
  return new Map(rows.filter((m) => m[1]!.startsWith(`flotilla_${component}_`)).map((m) => [m[1]!, m[2]!]));
}

/** The values of the agent's `outcome` label as the doc's table lists them. */
async function documentedOutcomes(): Promise<string[]> {
  const doc = await readFile(DOC, 'utf8');
  const table = doc.split('Agent `outcome` values')[1]!.split('\n\n')[1]!;
  return [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!);
}

/** Starts a call and settles to `{ ok, error }` instead of rejecting. */
function startCall(client: Client, name: string, args: Record<string, unknown>, meta: Record<string, unknown> = {}, signal?: AbortSignal) {
  return client.callTool({ name, arguments: args, _meta: meta }, undefined, { ...(signal ? { signal } : {}), timeout: 120_000 }).then(
    (result) => ({ ok: true as const, result, error: undefined }),
    (error: unknown) => ({ ok: false as const, result: undefined, error }),
  );
}

function errorCode(error: unknown): number | undefined {
  return error instanceof McpError ? error.code : undefined;
}

/** Asserts every series of a family moved by exactly `expected` (series not named there by 0). */
function assertDeltas(before: Exposition, after: Exposition, name: string, expected: Array<[Record<string, string>, number]>): void {
  const key = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).sort());
  const want = new Map(expected.map(([labels, n]) => [key(labels), n]));
  const seen = new Set<string>();
  for (const s of after.samples(name)) {
    const k = key(s.labels);
    seen.add(k);
    const delta = s.value - before.valueOrZero(name, s.labels);
    assert.equal(delta, want.get(k) ?? 0, `${name}${k} moved by ${delta}`);
  }
  for (const k of want.keys()) assert.ok(seen.has(k), `${name}${k} is not exposed`);
}

before(async () => {
  nats = await NatsServerProcess.start();
  // One slot and no queue: a second call while one runs is refused busy at once.
  t = await startTestAgent({
    natsUrl: nats.url,
    capacity: 1,
    maxQueue: 0,
    servers: [
      { name: 'echo', module: '@flotilla/examples/echo' },
      { name: 'failing', module: FAILING },
      { name: 'slow', module: SLOW },
    ],
  });
});

after(async () => {
  await t?.agent.stop();
  await nats?.dispose();
});

describe('/metrics', () => {
  test('is a valid exposition with exactly the documented agent metrics', async () => {
    const m = await scrape();
    const documented = await documentedMetrics('agent');
    assert.ok(documented.size >= 12, 'the doc lists the agent metrics');
    const exposed = new Map(
      [...m.families.values()]
        .filter((f) => f.name.startsWith('flotilla_agent_'))
        // prom-client's process and Node.js metrics, under our prefix; the doc names them as a group.
        .filter((f) => !f.name.startsWith('flotilla_agent_process_') && !f.name.startsWith('flotilla_agent_nodejs_'))
        .map((f) => [f.name, f.type]),
    );
    assert.deepEqual([...exposed.entries()].sort(), [...documented.entries()].sort());
    assert.ok(m.families.has('flotilla_agent_process_cpu_seconds_total'), 'default metrics carry the prefix');
    for (const f of m.families.values()) assert.match(f.name, /^flotilla_agent_/, `${f.name} has the agent prefix`);
    for (const f of m.families.values()) if (f.type === 'counter') assert.match(f.name, /_total$/, `counter ${f.name} ends in _total`);

    // Every hosted tool starts at zero for every documented outcome.
    const outcomes = await documentedOutcomes();
    assert.equal(outcomes.length, 7);
    for (const outcome of outcomes) {
      assert.equal(m.value(CALLS, { server: 'echo', tool: 'echo', outcome }), 0);
      assert.equal(m.value(CALLS, { server: 'slow', tool: 'work', outcome }), 0);
    }
    assert.deepEqual([...new Set(m.samples(CALLS).map((s) => s.labels.outcome))].sort(), [...outcomes].sort());

    assert.equal(m.value('flotilla_agent_capacity'), 1);
    assert.equal(m.value('flotilla_agent_draining'), 0);
    assert.equal(m.value('flotilla_agent_info', { node_id: t.agent.nodeId, version: '0.1.0', zone: '' }), 1);
    await eventually(async () => {
      const now = await scrape();
      assert.equal(now.value('flotilla_agent_nats_connected'), 1);
      assert.equal(now.value('flotilla_agent_registry_registered'), 1);
      assert.ok(now.valueOrZero('flotilla_agent_reports_published_total', { kind: 'event' }) >= 1, 'joined event published');
    }, 20_000);
    const first = (await scrape()).valueOrZero('flotilla_agent_reports_published_total', { kind: 'load' });
    await eventually(async () => assert.ok((await scrape()).valueOrZero('flotilla_agent_reports_published_total', { kind: 'load' }) > first), 20_000);
  });

  test('answers HEAD, and 405 for other methods', async () => {
    const head = await fetch(`${t.agent.url}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const post = await fetch(`${t.agent.url}/metrics`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('calls move the counters, histograms and gauges by exactly what happened', async () => {
    const echo = await connectClient(t.agent, 'echo');
    const failing = await connectClient(t.agent, 'failing');
    const slow = await connectClient(t.agent, 'slow');
    try {
      const sessions = await scrape();
      assert.equal(sessions.value('flotilla_agent_sessions', { server: 'echo' }), 1);
      assert.equal(sessions.value('flotilla_agent_sessions', { server: 'failing' }), 1);
      assert.equal(sessions.value('flotilla_agent_sessions', { server: 'slow' }), 1);
      const before = await scrape();

      const ok = await startCall(echo, 'echo', { text: 'hi' });
      assert.equal(ok.ok && ok.result.isError, undefined);
      const toolError = await startCall(failing, 'fail', {});
      assert.equal(toolError.ok && toolError.result.isError, true);
      const unknown = await startCall(echo, 'no-such-tool', {});
      assert.equal(unknown.ok, false, 'an unknown tool is a JSON-RPC error');

      const running = new AbortController();
      const long = startCall(slow, 'work', { steps: 100_000, stepMs: 50 }, { [META_CALL_ID]: 'metrics-long' }, running.signal);
      await eventually(async () => assert.equal((await scrape()).value('flotilla_agent_inflight_calls'), 1));
      const during = await scrape();
      assert.equal(during.value('flotilla_agent_queued_calls'), 0);
      const busy = await startCall(slow, 'work', { steps: 1, stepMs: 1 });
      assert.equal(errorCode(busy.error), FlotillaErrorCode.NodeBusy);
      running.abort('test cancels');
      assert.equal((await long).ok, false);
      await eventually(async () => assert.equal((await scrape()).value('flotilla_agent_inflight_calls'), 0));

      const late = await startCall(echo, 'echo', { text: 'late' }, { [META_DEADLINE]: Date.now() - 1 });
      assert.equal(errorCode(late.error), FlotillaErrorCode.DeadlineExceeded);

      await eventually(async () => {
        const after = await scrape();
        assertDeltas(before, after, CALLS, [
          [{ server: 'echo', tool: 'echo', outcome: 'ok' }, 1],
          [{ server: 'failing', tool: 'fail', outcome: 'tool_error' }, 1],
          [{ server: 'echo', tool: '(unknown)', outcome: 'error' }, 1],
          [{ server: 'slow', tool: 'work', outcome: 'rejected_busy' }, 1],
          [{ server: 'slow', tool: 'work', outcome: 'cancelled' }, 1],
          [{ server: 'echo', tool: 'echo', outcome: 'deadline_exceeded' }, 1],
        ]);
        // Every call that ran is in the duration histogram; the refused and the expired one never ran.
        assertDeltas(before, after, DURATION_COUNT, [
          [{ server: 'echo', tool: 'echo' }, 1],
          [{ server: 'failing', tool: 'fail' }, 1],
          [{ server: 'echo', tool: '(unknown)' }, 1],
          [{ server: 'slow', tool: 'work' }, 1],
        ]);
        assert.equal(after.valueOrZero(QUEUE_WAIT_COUNT) - before.valueOrZero(QUEUE_WAIT_COUNT), 4);
        assert.equal(after.value('flotilla_agent_inflight_calls'), 0);
        assert.equal(after.value('flotilla_agent_queued_calls'), 0);
      });
    } finally {
      await closeClient(echo);
      await closeClient(failing);
      await closeClient(slow);
    }
    await eventually(async () => {
      const m = await scrape();
      for (const server of ['echo', 'failing', 'slow']) assert.equal(m.value('flotilla_agent_sessions', { server }), 0);
    });
  });

  test('while draining: the gauge says so and new calls count as rejected_draining', async () => {
    const slow = await connectClient(t.agent, 'slow');
    const echo = await connectClient(t.agent, 'echo');
    let drained: Promise<void> | undefined;
    try {
      const running = new AbortController();
      const long = startCall(slow, 'work', { steps: 100_000, stepMs: 50 }, { [META_CALL_ID]: 'metrics-drain' }, running.signal);
      await eventually(async () => assert.equal((await scrape()).value('flotilla_agent_inflight_calls'), 1));
      const before = await scrape();
      drained = t.agent.drain(60_000);
      await eventually(async () => assert.equal((await scrape()).value('flotilla_agent_draining'), 1));
      const refused = await startCall(echo, 'echo', { text: 'too late' });
      assert.equal(errorCode(refused.error), FlotillaErrorCode.NodeDraining);
      const after = await scrape();
      assertDeltas(before, after, CALLS, [[{ server: 'echo', tool: 'echo', outcome: 'rejected_draining' }, 1]]);
      running.abort('let the drain finish');
      await long;
    } finally {
      await closeClient(slow);
      await closeClient(echo);
    }
    await drained;
  });
});
