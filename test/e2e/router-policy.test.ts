/**
 * The router's forwarding policy flags, with real processes: `flotilla router --max-attempts`,
 * `--hedge-read-only` (and the validation of every policy flag).
 *
 * Two agents: `steady` (capacity 16) and `tiny` (one call at a time, one waiting). The test fills `tiny`
 * with direct calls (bypassing the routers) so that what the routers see of it is decided, not timed:
 * with both places taken it answers busy (a refusal before acceptance, which the router retries on
 * another replica unless `--max-attempts 1`), with only its running slot taken a call waits in its queue
 * (which a hedging router outruns with a second copy on `steady`). Routers balance round-robin, so `tiny`
 * gets every other call whatever its load.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ChaosMesh, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';
import { CLI_BIN } from '../harness/FlotillaProcess.js';
import { parseExposition, type Exposition } from '../harness/prometheusText.js';

describe('flotilla router: invalid policy values', () => {
  const cases: Array<{ args: string[]; option: string; message: RegExp }> = [
    { args: ['--max-attempts', '0'], option: '--max-attempts', message: /"0" is not an integer from 1 to 10/ },
    { args: ['--max-attempts', '11'], option: '--max-attempts', message: /"11" is not an integer from 1 to 10/ },
    { args: ['--max-attempts', '2.5'], option: '--max-attempts', message: /"2\.5" is not an integer from 1 to 10/ },
    { args: ['--retry-window-ms', 'soon'], option: '--retry-window-ms', message: /"soon" is not an integer from 1 to 2147483647/ },
    { args: ['--call-timeout-ms', '-5'], option: '--call-timeout-ms', message: /"-5" is not an integer from 1 to 2147483647/ },
    { args: ['--call-timeout-ms', '9999999999'], option: '--call-timeout-ms', message: /is not an integer from 1 to 2147483647/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.args.join(' ')} with a message naming the option and exit code 1`, () => {
      // An unreachable NATS URL: were the value accepted, the router would fail differently (and later).
      const r = spawnSync(process.execPath, [CLI_BIN, 'router', '--nats', 'nats://127.0.0.1:1', '--port', '0', ...c.args], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, `exit code; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(c.option), `stderr names ${c.option}: ${r.stderr}`);
      assert.match(r.stderr, c.message);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      assert.equal(r.stdout, '', 'nothing started, nothing logged');
    });
  }

  it('lists the policy flags in --help', () => {
    const r = spawnSync(process.execPath, [CLI_BIN, 'router', '--help'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0);
    for (const flag of ['--max-attempts <n>', '--retry-window-ms <ms>', '--hedge-read-only', '--call-timeout-ms <ms>', '--per-node-concurrency <n>']) {
      assert.ok(r.stdout.includes(flag), `--help lists ${flag}`);
    }
  });
});

describe('flotilla router: policy flags on a mesh', () => {
  let mesh: ChaosMesh;
  /** Router with the default policy (3 attempts, no hedging). */
  let defaultRouter: string;
  /** `--max-attempts 1`. */
  let oneAttemptRouter: string;
  /** `--hedge-read-only`. */
  let hedgingRouter: string;
  const holds: Hold[] = [];

  before(async () => {
    mesh = await ChaosMesh.start();
    defaultRouter = await mesh.startRouter(['--strategy', 'round-robin'], 'router-default');
    oneAttemptRouter = await mesh.startRouter(['--strategy', 'round-robin', '--max-attempts', '1', '--retry-window-ms', '60000'], 'router-one-attempt');
    hedgingRouter = await mesh.startRouter(['--strategy', 'round-robin', '--hedge-read-only', '--call-timeout-ms', '120000'], 'router-hedging');
    await mesh.startAgent('steady', ['--capacity', '16']);
    await mesh.startAgent('tiny', ['--capacity', '1', '--max-queue', '1']);
    await mesh.waitForReplicas('echo_echo', ['steady', 'tiny']);
  });

  after(async () => {
    for (const h of holds) await h.release();
    await mesh?.stop();
  });

  /** Takes `count` of tiny's places (running slot first, then its queue) with long direct calls. */
  async function fillTiny(count: number): Promise<Hold> {
    const hold = await holdNode(mesh, 'tiny', count);
    holds.push(hold);
    await eventually(async () => {
      const tiny = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'tiny');
      const taken = (tiny?.load?.inflight ?? 0) + (tiny?.load?.queued ?? 0);
      assert.equal(taken, count, `tiny reports ${JSON.stringify(tiny?.load)}`);
    }, 30_000);
    return hold;
  }

  async function tinyIsFree(): Promise<void> {
    await eventually(async () => {
      const tiny = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'tiny');
      assert.deepEqual([tiny?.load?.inflight, tiny?.load?.queued], [0, 0], `tiny reports ${JSON.stringify(tiny?.load)}`);
    }, 30_000);
  }

  it('--max-attempts 1: a call tiny refuses as busy reaches the client as an error; with the default it is retried and succeeds', async () => {
    const hold = await fillTiny(2);
    let viaDefault: CallOutcome[];
    let viaOneAttempt: CallOutcome[];
    try {
      // Round-robin: of four calls in a row, tiny is offered at least one (the default router's retries
      // take turns too, so it may be offered more).
      viaDefault = await echoCalls(defaultRouter, 4, 'default');
      viaOneAttempt = await echoCalls(oneAttemptRouter, 4, 'one-attempt');
    } finally {
      await hold.release();
    }
    assert.deepEqual(viaDefault.filter((o) => !o.ok), [], 'every call through the default router succeeded');
    const refused = viaOneAttempt.filter((o) => !o.ok);
    assert.ok(refused.length >= 1 && refused.length < viaOneAttempt.length, `some calls, not all, failed: ${JSON.stringify(viaOneAttempt)}`);
    for (const o of refused) assert.match(o.message, /busy/i, 'the client is told why');

    const defaultMetrics = await scrape(defaultRouter);
    const oneAttemptMetrics = await scrape(oneAttemptRouter);
    assert.ok(defaultMetrics.valueOrZero('flotilla_router_retries_total', { tool: 'echo_echo', reason: 'busy' }) >= 1, 'the default router retried busy refusals');
    assert.equal(oneAttemptMetrics.sum('flotilla_router_retries_total'), 0, 'the one-attempt router never retried');
    assert.equal(oneAttemptMetrics.valueOrZero('flotilla_router_attempts_total', { tool: 'echo_echo', node: 'tiny', result: 'busy' }), refused.length);
    process.stderr.write(`# router-policy: --max-attempts 1 gave ${refused.length} of ${viaOneAttempt.length} calls the busy error; the default router retried ${defaultMetrics.valueOrZero('flotilla_router_retries_total', { tool: 'echo_echo', reason: 'busy' })}\n`);
    await tinyIsFree();
  });

  it('--hedge-read-only: a read-only call stuck in tiny’s queue gets a second copy on steady; without the flag nothing is hedged', async () => {
    // The hedging router needs 20 samples of echo on each node before it trusts a p95 there.
    const warmUp = await echoCalls(hedgingRouter, 60, 'warm-hedging');
    assert.deepEqual(warmUp.filter((o) => !o.ok), []);
    await echoCalls(defaultRouter, 60, 'warm-default');
    const before = (await scrape(hedgingRouter)).valueOrZero('flotilla_router_hedges_total', { tool: 'echo_echo' });

    // tiny runs one long call; a call placed there now waits in its queue far past any p95 of echo.
    const hold = await fillTiny(1);
    let stalled: CallOutcome[];
    try {
      stalled = await echoCalls(hedgingRouter, 4, 'stalled');
    } finally {
      await hold.release();
    }
    assert.deepEqual(stalled.filter((o) => !o.ok), [], 'every call succeeded while tiny was stuck');
    const hedging = await scrape(hedgingRouter);
    const hedges = hedging.valueOrZero('flotilla_router_hedges_total', { tool: 'echo_echo' }) - before;
    assert.ok(hedges >= 1, `the hedging router sent ${hedges} second copies`);
    process.stderr.write(`# router-policy: ${hedges} hedges for ${stalled.length} calls while tiny was stuck (${before} during the warm-up)\n`);
    // The copy left waiting on tiny was cancelled once steady answered (counted when its attempt ended).
    await eventually(async () => {
      const cancelled = (await scrape(hedgingRouter)).valueOrZero('flotilla_router_attempts_total', { tool: 'echo_echo', node: 'tiny', result: 'cancelled' });
      assert.ok(cancelled >= 1, `cancelled attempts on tiny: ${cancelled}`);
    }, 30_000);
    const notHedging = await scrape(defaultRouter);
    assert.equal(notHedging.sum('flotilla_router_hedges_total'), 0, 'the router without --hedge-read-only never hedged');
    await tinyIsFree();
  });
});

/** Direct calls holding places on a node until released. */
interface Hold {
  release(): Promise<void>;
}

/** Starts `count` long `slow/work` calls directly on one agent (one session, not through a router). */
async function holdNode(mesh: ChaosMesh, nodeId: string, count: number): Promise<Hold> {
  const url = mesh.serverUrl(nodeId, 'slow');
  const client = new Client({ name: 'router-policy-hold', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  const abort = new AbortController();
  const calls: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    // Started one after the other so the first surely takes the running slot and the next the queue.
    calls.push(client.callTool({ name: 'work', arguments: { steps: 1200, stepMs: 100 } }, undefined, { signal: abort.signal, timeout: 600_000 }).catch(() => undefined));
  }
  let released: Promise<void> | undefined;
  return {
    release: () =>
      (released ??= (async () => {
        abort.abort(); // the SDK sends notifications/cancelled, which frees the node's places
        await Promise.all(calls);
        await transport.terminateSession().catch(() => {});
        await client.close().catch(() => {});
      })()),
  };
}

type CallOutcome = { ok: true } | { ok: false; message: string };

/** `count` calls of `echo_echo` in a row through a router, each on its own outcome. */
async function echoCalls(routerUrl: string, count: number, label: string): Promise<CallOutcome[]> {
  const client = new Client({ name: `router-policy-${label}`, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(routerUrl));
  await client.connect(transport);
  const outcomes: CallOutcome[] = [];
  try {
    for (let i = 0; i < count; i++) {
      try {
        const r = await client.callTool({ name: 'echo_echo', arguments: { text: `${label}-${i}` } }, undefined, { timeout: 120_000 });
        outcomes.push(r.isError ? { ok: false, message: JSON.stringify(r.content) } : { ok: true });
      } catch (err) {
        outcomes.push({ ok: false, message: (err as Error).message });
      }
    }
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
  return outcomes;
}

async function scrape(routerUrl: string): Promise<Exposition> {
  const res = await fetch(routerUrl.replace(/\/mcp$/, '/metrics'));
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}
