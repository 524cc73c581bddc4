/**
 * The mesh on the Consul registry backend, as real processes: agents register in Consul (here the
 * stand-in, which really runs the gRPC check against each agent's grpc.health.v1 service), the router
 * watches Consul with blocking queries, and `flotilla nodes` reads it. Runs against a real Consul's API
 * shapes via the stand-in; see packages/registry/README.md for running the registry suite on real Consul.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ConsulStandIn } from '../consul-standin/ConsulStandIn.js';
import { CLI_BIN, FlotillaProcess, type LogLine } from '../harness/FlotillaProcess.js';
import { freePort } from '../harness/freePort.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { eventually } from '../harness/eventually.js';

const run = promisify(execFile);
const AGENT_TOKEN = 'agent-token';
const ROUTER_TOKEN = 'router-token';

let nats: NatsServerProcess;
let consul: ConsulStandIn;
let router: FlotillaProcess;
let routerUrl: string;
/** The two agents started before the tests (other tests start more, under other or the same labels). */
let c1: FlotillaProcess;
let c2: FlotillaProcess;
const procs: FlotillaProcess[] = [];

function agent(nodeId: string, env: NodeJS.ProcessEnv = {}): FlotillaProcess {
  const p = FlotillaProcess.spawn(nodeId, ['agent', '--node-id', nodeId, '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--registry', 'consul', '--port', '0', '--grpc-port', '0'], {
    CONSUL_HTTP_ADDR: consul.url,
    CONSUL_HTTP_TOKEN: AGENT_TOKEN,
    ...env,
  });
  procs.push(p);
  return p;
}

type HealthEntry = { Service: { ID: string }; Checks: Array<{ CheckID: string; Status: string; Type?: string; Output: string }> };
async function consulHealth(): Promise<HealthEntry[]> {
  const res = await fetch(`${consul.url}/v1/health/service/flotilla-agent`, { headers: { 'X-Consul-Token': ROUTER_TOKEN } });
  return (await res.json()) as HealthEntry[];
}

async function routerNodes(): Promise<string[]> {
  const res = await fetch(routerUrl.replace(/\/mcp$/, '/api/v1/nodes'));
  const body = (await res.json()) as { nodes: Array<{ nodeId: string }> };
  return body.nodes.map((n) => n.nodeId).sort();
}

before(async () => {
  nats = await NatsServerProcess.start();
  consul = await ConsulStandIn.start({ acl: { tokens: { [AGENT_TOKEN]: 'write', [ROUTER_TOKEN]: 'read' } } });
  router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--registry', 'consul', '--port', '0'], { CONSUL_HTTP_ADDR: consul.url, CONSUL_HTTP_TOKEN: ROUTER_TOKEN });
  procs.push(router);
  routerUrl = String((await router.ready()).url);
  c1 = agent('c-1');
  c2 = agent('c-2');
  await Promise.all([c1.ready(), c2.ready()]);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop(2000)));
  await consul.dispose();
  await nats.dispose();
});

test('agents register in Consul with a passing gRPC check and a TTL ping check carrying ping data', async () => {
  await eventually(async () => {
    const entries = await consulHealth();
    assert.deepEqual(entries.map((e) => e.Service.ID).sort(), ['c-1', 'c-2']);
    for (const e of entries) {
      const grpc = e.Checks.find((c) => c.Type === 'grpc');
      const ttl = e.Checks.find((c) => c.Type === 'ttl');
      assert.equal(grpc?.Status, 'passing', `gRPC check of ${e.Service.ID}: ${JSON.stringify(grpc)}`);
      assert.equal(ttl?.Status, 'passing');
      assert.ok(JSON.parse(ttl!.Output).inflight !== undefined, 'ping data is the TTL check output');
    }
  });
});

test('the router discovers the nodes from Consul and serves their tools', async () => {
  await eventually(async () => assert.deepEqual(await routerNodes(), ['c-1', 'c-2']));
  const client = new Client({ name: 'consul-e2e', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(routerUrl)));
  const r = await client.callTool({ name: 'echo_echo', arguments: { text: 'via consul' } });
  assert.deepEqual(r.content, [{ type: 'text', text: 'via consul' }]);
  await client.close();
});

test('flotilla nodes reads Consul: health, ping data, servers', async () => {
  const { stdout } = await run(process.execPath, [CLI_BIN, 'nodes', '--registry', 'consul'], { env: { ...process.env, CONSUL_HTTP_ADDR: consul.url, CONSUL_HTTP_TOKEN: ROUTER_TOKEN } });
  assert.match(stdout, /c-1\s+passing/);
  assert.match(stdout, /c-2\s+passing/);
  assert.match(stdout, /echo\(\d+\)/);
});

test('a second agent claiming a live node id is refused with a clear message', async () => {
  const dup = agent('c-1');
  const exit = await dup.exited;
  assert.notEqual(exit.code, 0);
  const text = JSON.stringify(dup.lines) + dup.stderr.join('');
  assert.match(text, /already registered/);
});

test('a rejected token fails with an error naming CONSUL_HTTP_TOKEN', async () => {
  const bad = agent('c-bad', { CONSUL_HTTP_TOKEN: 'not-a-token' });
  const exit = await bad.exited;
  assert.notEqual(exit.code, 0);
  assert.match(JSON.stringify(bad.lines) + bad.stderr.join(''), /CONSUL_HTTP_TOKEN/);
});

test('Consul unreachable at agent start: the agent serves, keeps retrying, and joins when Consul comes up', async () => {
  const port = await freePort();
  const late = FlotillaProcess.spawn('c-late', ['agent', '--node-id', 'c-late', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--registry', 'consul', '--port', '0', '--grpc-port', '0'], {
    CONSUL_HTTP_ADDR: `127.0.0.1:${port}`,
  });
  procs.push(late);
  const ready = await late.ready();
  // It serves MCP while unregistered (readiness is about serving, not about the registry), and its health
  // report says the registry is being retried.
  await late.waitFor((l) => /registry unreachable/.test(String(l.msg)));
  const health = async (): Promise<{ reasons: string[] }> => (await (await fetch(`${String(ready.url)}/readyz`)).json()) as { reasons: string[] };
  await eventually(async () => assert.ok((await health()).reasons.some((r) => /registry retrying/.test(r)), JSON.stringify(await health())));
  const second = await ConsulStandIn.start({ port });
  try {
    await eventually(async () => {
      const res = await fetch(`${second.url}/v1/health/service/flotilla-agent`);
      const entries = (await res.json()) as HealthEntry[];
      assert.deepEqual(entries.map((e) => e.Service.ID), ['c-late']);
    });
    await eventually(async () => assert.deepEqual((await health()).reasons.filter((r) => r.startsWith('registry')), []));
  } finally {
    await late.stop();
    await second.dispose();
  }
});

test('Consul answering 5xx or garbage: agents log it, keep serving and recover; the router keeps its catalog', async () => {
  const agents = [c1, c2];
  const agentMark = new Map(agents.map((p) => [p, p.lines.length]));
  const routerMark = router.lines.length;
  const linesSince = (p: FlotillaProcess, mark: number): LogLine[] => p.lines.slice(mark);
  consul.injectFault({ path: /\/v1\/agent\/check\/update\//, status: 500, body: 'rpc error: No cluster leader', times: 3 });
  // Only blocking queries: the router's watch (agents read the service list without blocking).
  consul.injectFault({ path: /\/v1\/health\/service\//, target: /[?&]index=/, status: 200, body: '<html>not json</html>', times: 2 });
  // A heartbeat got the 500: the agent says the registry is unreachable, naming Consul's answer.
  const hit = await eventually(() => {
    const failed = agents.filter((p) => linesSince(p, agentMark.get(p)!).some((l) => l.msg === 'registry unreachable; retrying' && /HTTP 500: rpc error: No cluster leader/.test(String((l.err as { message?: unknown } | undefined)?.message))));
    assert.ok(failed.length > 0, 'no agent logged the injected 500');
    return failed;
  }, 30_000);
  // ...and recovers: its next heartbeat registers it again.
  for (const p of hit) {
    await eventually(() => {
      const since = linesSince(p, agentMark.get(p)!);
      const failedAt = since.findIndex((l) => l.msg === 'registry unreachable; retrying');
      assert.ok(since.slice(failedAt + 1).some((l) => l.msg === 'node registered'), `${p.label} did not register again after the 500`);
    }, 30_000);
  }
  // The router's watch got the garbage, kept its nodes, and resumed.
  const watchFailed = await eventually(() => {
    const line = linesSince(router, routerMark).find((l) => l.msg === 'Consul registry watch failed; keeping the last known nodes and retrying');
    assert.ok(line, 'the router did not log the garbage answer');
    return line;
  }, 30_000);
  assert.match(String((watchFailed.err as { message?: unknown } | undefined)?.message), /answer is not JSON/);
  assert.deepEqual(await routerNodes(), ['c-1', 'c-2']);
  await eventually(() => assert.ok(linesSince(router, routerMark).some((l) => l.msg === 'Consul reachable again; registry watch resumed'), 'the router watch did not resume'), 30_000);
  // Nothing crashed, every agent serves and shows passing in Consul, and the router still lists both nodes.
  await eventually(async () => {
    const entries = await consulHealth();
    assert.deepEqual(entries.filter((e) => e.Checks.every((c) => c.Status === 'passing')).map((e) => e.Service.ID).sort(), ['c-1', 'c-2']);
  });
  assert.deepEqual(await routerNodes(), ['c-1', 'c-2']);
  assert.equal(router.child.exitCode, null);
  for (const p of agents) assert.equal(p.child.exitCode, null, `${p.label} exited`);
});

test('a node killed with SIGKILL goes critical in Consul and leaves the router', async () => {
  c2.signal('SIGKILL');
  // Consul's own gRPC check of the node fails: the node is critical there, not merely gone.
  await eventually(async () => {
    const entry = (await consulHealth()).find((e) => e.Service.ID === 'c-2');
    assert.ok(entry, 'c-2 is still registered in Consul (nobody deregistered it)');
    assert.equal(entry.Checks.find((c) => c.Type === 'grpc')?.Status, 'critical', JSON.stringify(entry.Checks));
  }, 30_000);
  await eventually(async () => assert.deepEqual(await routerNodes(), ['c-1']), 15_000);
  const alive = (await consulHealth()).find((e) => e.Service.ID === 'c-1');
  assert.ok(alive?.Checks.every((c) => c.Status === 'passing'), JSON.stringify(alive?.Checks));
});
