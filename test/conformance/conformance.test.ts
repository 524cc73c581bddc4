/**
 * Protocol fidelity: the official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
 * test/conformance/suite/), every server scenario (the 30 active ones plus the 2 the suite still calls
 * "pending"), against
 *   1. the fixture server hosted directly (proves the fixture implements every scenario), and
 *   2. the Flotilla router, with a real nats-server and a real agent hosting the same fixture as server
 *      `test` (so the router's `test_<tool>` names are exactly the suite's) and its SEP-1613 companion as
 *      server `json` (`json_schema_2020_12_tool`).
 * Through the router, every scenario must pass except those listed in baseline.json, and each of those
 * must still fail (a passing baselined scenario means the baseline must shrink).
 *
 * The suite needs Node 22; scripts/conformance.sh installs a pinned copy under .tools/conformance on first
 * use (npm registry needed once). FLOTILLA_SKIP_CONFORMANCE=1 skips this file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { freePort } from '../harness/freePort.js';
import { HaproxyProcess } from '../harness/HaproxyProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { startConformanceHost, type ConformanceHost } from '../../packages/examples/src/conformanceHost.js';
import {
  compareWithBaseline,
  describeFailure,
  installSuite,
  INSTALL_FAILED_EXIT,
  readBaseline,
  runSuite,
  type SuiteRun,
} from './runSuite.js';

const skip = process.env.FLOTILLA_SKIP_CONFORMANCE ? 'FLOTILLA_SKIP_CONFORMANCE is set' : false;

/**
 * `all` = the active suite (what the issue requires) plus the pending scenarios: json-schema-2020-12 checks
 * that tool schemas cross the router verbatim, and server-sse-polling only ever warns.
 */
const SUITE_ARGS = ['--suite', 'all'];
/** Server scenarios in conformance 0.1.16's `all` suite; fewer means the run broke off. */
const MIN_SCENARIOS = 32;

/** Every scenario's verdict, one per line, for assertion messages. */
function summary(run: SuiteRun): string {
  return [...run.results.values()].map((r) => `  ${r.passed ? 'pass' : 'FAIL'} ${r.scenario}`).join('\n');
}

describe('MCP conformance suite', { skip, timeout: 900_000 }, () => {
  before(async () => {
    const install = await installSuite();
    if (install.exitCode === INSTALL_FAILED_EXIT) {
      throw new Error(`could not install the conformance suite (set FLOTILLA_SKIP_CONFORMANCE=1 to skip):\n${install.stderr}`);
    }
    assert.equal(install.exitCode, 0, `scripts/conformance.sh --install-only failed:\n${install.stderr}`);
  });

  it('the fixture passes every server scenario when hosted directly', async () => {
    let host: ConformanceHost | undefined;
    try {
      host = await startConformanceHost();
      const run = await runSuite(host.url, SUITE_ARGS);
      assert.ok(run.results.size >= MIN_SCENARIOS, `expected ${MIN_SCENARIOS} scenarios, saw ${run.results.size}:\n${run.stdout.slice(-3000)}`);
      const failed = [...run.results.values()].filter((r) => !r.passed);
      assert.deepEqual(
        failed.map((r) => r.scenario),
        [],
        `the fixture itself fails scenarios (results in ${run.outputDir}):\n${failed.map(describeFailure).join('\n')}`,
      );
      assert.equal(run.exitCode, 0, `suite exited ${run.exitCode}:\n${run.stdout.slice(-3000)}`);
      await rm(run.outputDir, { recursive: true, force: true }); // kept only when something failed
    } finally {
      await host?.close();
    }
  });

  describe('through the router', () => {
    let nats: NatsServerProcess | undefined;
    let agent: FlotillaProcess | undefined;
    let router: FlotillaProcess | undefined;
    let routerUrl = '';

    before(async () => {
      assert.ok(existsSync(CLI_BIN), `${CLI_BIN} is missing: build first (bash scripts/pnpm.sh -s build)`);
      nats = await NatsServerProcess.start();
      agent = startFixtureAgent(nats.url, 'conf-1');
      router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0']);
      await agent.ready();
      routerUrl = routerMcpUrl((await router.ready()).url);
      // The router's ready line comes before it has discovered the agent; wait until the fixture's tools
      // are in its catalog, or the first scenarios would fail for a reason that is no protocol bug.
      await waitForTools(routerUrl, ['test_simple_text', 'json_schema_2020_12_tool'], 30_000);
    });

    after(async () => {
      await router?.stop();
      await agent?.stop();
      await nats?.dispose();
    });

    it('every server scenario passes, except those listed in baseline.json (which must still fail)', async () => {
      await expectBaseline(routerUrl);
    });
  });

  describe('through two router replicas behind a load balancer (per-request balancing)', () => {
    let nats: NatsServerProcess | undefined;
    let agent: FlotillaProcess | undefined;
    const routers: FlotillaProcess[] = [];
    let lb: HaproxyProcess | undefined;

    before(async () => {
      nats = await NatsServerProcess.start();
      agent = startFixtureAgent(nats.url, 'conf-lb');
      const lbPort = await freePort();
      const key = randomBytes(32).toString('base64');
      const ports = [await freePort(), await freePort()];
      for (const [i, port] of ports.entries()) {
        routers.push(
          FlotillaProcess.spawn(`router-${i + 1}`, ['router', '--nats', nats.url, '--port', String(port), '--allowed-host', `127.0.0.1:${lbPort}`, '--allowed-host', `localhost:${lbPort}`, '--allowed-host', `127.0.0.1:${port}`], {
            FLOTILLA_SESSION_KEY: key,
          }),
        );
      }
      await agent.ready();
      for (const r of routers) await r.ready();
      for (const port of ports) await waitForTools(`http://127.0.0.1:${port}/mcp`, ['test_simple_text', 'json_schema_2020_12_tool'], 30_000);
      lb = await HaproxyProcess.startOn(lbPort, ports.map((port, i) => ({ name: `r${i + 1}`, port })));
    });

    after(async () => {
      await lb?.stop();
      for (const r of routers) await r.stop();
      await agent?.stop();
      await nats?.dispose();
    });

    it('every server scenario passes, except those listed in baseline.json (which must still fail)', async () => {
      await expectBaseline(lb!.url);
    });
  });
});

/** Runs the suite against `url` and checks the verdicts against baseline.json. */
async function expectBaseline(url: string): Promise<void> {
  const baseline = await readBaseline();
  const run = await runSuite(url, SUITE_ARGS);
  assert.ok(run.results.size >= MIN_SCENARIOS, `expected ${MIN_SCENARIOS} scenarios, saw ${run.results.size}:\n${run.stdout.slice(-3000)}`);
  const diff = compareWithBaseline(run.results, baseline);
  const problems: string[] = [];
  if (diff.unexpectedFailures.length > 0) {
    problems.push(`failing through the router, not in baseline.json:\n${diff.unexpectedFailures.map(describeFailure).join('\n')}`);
  }
  if (diff.unexpectedPasses.length > 0) {
    problems.push(`in baseline.json but passing now; remove them from the baseline (and the README): ${diff.unexpectedPasses.join(', ')}`);
  }
  if (diff.missing.length > 0) {
    problems.push(`in baseline.json but not run by the suite (renamed or dropped?): ${diff.missing.join(', ')}`);
  }
  assert.deepEqual(problems, [], `${problems.join('\n\n')}\n\nall scenarios:\n${summary(run)}\n(checks in ${run.outputDir})`);
  await rm(run.outputDir, { recursive: true, force: true }); // kept only when something failed
}

/** An agent hosting the fixture as server `test` (so the router's `test_<tool>` names are exactly the suite's) and its SEP-1613 companion as `json`. */
function startFixtureAgent(natsUrl: string, nodeId: string): FlotillaProcess {
  return FlotillaProcess.spawn(nodeId, [
    'agent', '--node-id', nodeId,
    '--server', 'test=@flotilla/examples/conformance',
    '--server', 'json=@flotilla/examples/conformanceJsonSchema',
    '--nats', natsUrl, '--port', '0', '--grpc-port', '0',
  ]);
}

/** The router's MCP endpoint from its ready line's `url`, addressed as loopback (what the suite expects). */
function routerMcpUrl(raw: unknown): string {
  assert.equal(typeof raw, 'string', 'the router ready line has no url');
  const url = new URL(raw as string);
  // A wildcard listen address is no address to connect to, and the DNS-rebinding scenario wants loopback.
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]' || url.hostname === '::') url.hostname = '127.0.0.1';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/mcp';
  return url.toString();
}

/** Polls the router's tools/list (plain HTTP, a fresh session each time) until all `tools` show up. */
async function waitForTools(url: string, tools: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const names = await listTools(url);
      if (tools.every((t) => names.includes(t))) return;
      last = `tools: ${names.join(', ') || '(none)'}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`router never listed ${tools.join(' and ')} within ${timeoutMs} ms; last: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const PROTOCOL_VERSION = '2025-06-18';

async function listTools(url: string): Promise<string[]> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'flotilla-conformance-probe', version: '1.0.0' } },
    }),
  });
  if (!init.ok) throw new Error(`initialize: HTTP ${init.status}`);
  await readResponse(init, 1);
  const session = init.headers.get('mcp-session-id');
  const inSession = { ...headers, 'mcp-protocol-version': PROTOCOL_VERSION, ...(session ? { 'mcp-session-id': session } : {}) };
  try {
    const note = await fetch(url, { method: 'POST', headers: inSession, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    await note.body?.cancel();
    const list = await fetch(url, { method: 'POST', headers: inSession, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }) });
    if (!list.ok) throw new Error(`tools/list: HTTP ${list.status}`);
    const result = await readResponse(list, 2);
    const tools = isObject(result) && Array.isArray(result.tools) ? result.tools : [];
    return tools.flatMap((t) => (isObject(t) && typeof t.name === 'string' ? [t.name] : []));
  } finally {
    if (session) await fetch(url, { method: 'DELETE', headers: inSession }).then((r) => r.body?.cancel(), () => undefined);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The `result` of JSON-RPC response `id`, from a JSON body or from the SSE stream of a POST. */
async function readResponse(res: Response, id: number): Promise<unknown> {
  const pick = (msg: unknown): { found: boolean; result?: unknown } => {
    if (!isObject(msg) || msg.id !== id) return { found: false };
    if (msg.error !== undefined) throw new Error(`JSON-RPC error: ${JSON.stringify(msg.error)}`);
    return { found: true, result: msg.result };
  };
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const r = pick(await res.json());
    if (!r.found) throw new Error(`no response with id ${id}`);
    return r.result;
  }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`SSE stream ended without a response to id ${id}`);
      buf += value;
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (!data) continue;
        const r = pick(JSON.parse(data));
        if (r.found) return r.result;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
