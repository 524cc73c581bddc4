/**
 * The attacker's view of the control plane and the agents, against real processes: `flotilla router` and
 * `flotilla agent`s run with every protection on (node keys and credentials, operator keys, mesh tokens),
 * first on a nats-server that enforces accounts and subject permissions (NKey users per role), then on an
 * open one, where only the router's own checks stand between an attacker and the fleet. Each test plays
 * one attack of issue 11 and shows it fails, and that the real nodes keep working.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { headers as natsHeaders, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  ControlReplySchema,
  PROTOCOL_VERSION,
  SIGNATURE_HEADER,
  decodeJson,
  encodeJson,
  subjects,
  type ControlRequest,
  type LoadReport,
  type NodeRecord,
} from '../../packages/protocol/src/index.js';
import {
  MeshTokenIssuer,
  Signer,
  generateKey,
  issueNodeCredential,
  keyFromSeed,
  readSeedFile,
  signControlRequest,
  signRecord,
} from '../../packages/trust/src/index.js';
import { connectClient, until, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { parseExposition } from '../harness/prometheusText.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { SecureMesh } from '../harness/SecureMesh.js';

const names = subjects();
const ECHO = '@flotilla/examples/echo';
const text = (r: unknown): string => CallToolResultSchema.parse(r).content.map((x) => (x.type === 'text' ? x.text : '')).join('');

interface NodesView {
  nodes: Array<{ nodeId: string; load?: { seq: number; inflight: number; at: number } }>;
}

async function routerMetric(mesh: SecureMesh, name: string, labels: Record<string, string> = {}): Promise<number> {
  const body = await (await fetch(mesh.routerUrl.replace(/\/mcp$/, '/metrics'))).text();
  return parseExposition(body).value(name, labels) ?? 0;
}

/** A control request over NATS; resolves with the decoded reply (or rejects: no reply, permission error). */
async function control(nc: NatsConnection, nodeId: string, payload: Uint8Array, hdrs: Record<string, string> = {}): Promise<{ ok: boolean; error?: string; draining: boolean }> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  const reply = await nc.request(names.control(nodeId), payload, { timeout: 3000, headers: h });
  const decoded = decodeJson(ControlReplySchema, reply.data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

/** POSTs a body to a URL with raw headers; resolves with status, headers and body text. */
function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body }).then(async (r) => ({
    status: r.status,
    headers: Object.fromEntries(r.headers),
    body: await r.text(),
  }));
}

/** The JSON-RPC error message of a JSON body. */
const messageOf = (body: string): string => (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? '';

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'attacker', version: '1' } } });

describe('attacks on a mesh whose nats-server enforces accounts and permissions', () => {
  let mesh: SecureMesh;
  let client: TestClient;
  let node1Url: string;

  before(async () => {
    mesh = await SecureMesh.start({ nodeIds: ['node-1', 'node-2', 'node-3'] });
    await mesh.startRouter();
    node1Url = (await mesh.startAgent('node-1', [`echo=${ECHO}`], ['--body-timeout-ms', '2000'])).url;
    await mesh.startAgent('node-2', [`echo=${ECHO}`]);
    client = await connectClient(mesh.routerUrl);
    await until('both nodes in the catalog', async () => (await mesh.api<{ tools: Array<{ name: string; replicas: unknown[] }> }>('/api/v1/tools')).tools.find((t) => t.name === 'echo_echo')?.replicas.length === 2, 60_000);
  });

  after(async () => {
    await client?.close().catch(() => {});
    await mesh?.stop();
  });

  it('calls through the router work: the router sends its mesh token, the nodes sign and are trusted', async () => {
    const result = await client.client.callTool({ name: 'echo_echo', arguments: { text: 'through the mesh' } });
    assert.match(text(result), /through the mesh/);
    assert.equal(await routerMetric(mesh, 'flotilla_router_accepted_nodes'), 2);
  });

  it('anonymous NATS: the connection itself is refused, so no drain can be sent', async () => {
    await assert.rejects(mesh.connectAs(undefined), /Authorization Violation|authorization/i);
  });

  it("a compromised agent (node-2's NATS identity) cannot drain node-1, write node-1's or a new record, or publish node-1's reports", async () => {
    const nc = await mesh.connectAs(mesh.keys.nodes.get('node-2')!.seedFile, 'node-2-compromised');
    try {
      const request: ControlRequest = { v: PROTOCOL_VERSION, op: 'drain' };
      await assert.rejects(control(nc, 'node-1', encodeJson(request)), /permission|timeout|no responders/i);
      const kv = await new Kvm(nc).open(names.registryBucket);
      await assert.rejects(kv.put('nodes.node-1', encodeJson({ record: {} })), /permission|timeout|violation/i);
      await assert.rejects(kv.put('nodes.evil', encodeJson({ record: {} })), /permission|timeout|violation/i);
      // A forged load report on node-1's subject: the server drops it. A router-side subscriber (the router's
      // identity) sees node-1's next real reports and never the forged one.
      const watcher = await mesh.connectAs(mesh.routerNatsSeedFile, 'watcher');
      try {
        const seen: LoadReport[] = [];
        const sub = watcher.subscribe(names.load('node-1'), { callback: (_e, m: Msg) => void seen.push(JSON.parse(new TextDecoder().decode(m.data)) as LoadReport) });
        await watcher.flush();
        nc.publish(names.load('node-1'), encodeJson({ v: PROTOCOL_VERSION, nodeId: 'node-1', seq: 1e12, at: Date.now(), inflight: 4242, queued: 0, capacity: 16, eventLoopLagMs: 0, draining: false, tools: {} }));
        await nc.flush().catch(() => {});
        await until('two real node-1 reports after the forged one', () => seen.length >= 2, 20_000);
        sub.unsubscribe();
        assert.ok(seen.every((r) => r.inflight !== 4242 && r.seq < 1e12), 'the forged report never reached a subscriber');
      } finally {
        await watcher.close();
      }
      assert.match(mesh.nats.log, /Violation/, 'the server logged the permission violations');
    } finally {
      await nc.close().catch(() => {});
    }
    const view = await mesh.api<NodesView>('/api/v1/nodes');
    assert.deepEqual(view.nodes.map((n) => n.nodeId).sort(), ['node-1', 'node-2'], 'no fake node joined');
  });

  it('control requests need the operator credential: unsigned, wrongly signed, for another node, or replayed are refused', async () => {
    const nc = await mesh.connectAs(mesh.keys.operator.seedFile, 'operator');
    try {
      const subject = names.control('node-1');
      const status: ControlRequest = { v: PROTOCOL_VERSION, op: 'status' };
      const drain: ControlRequest = { v: PROTOCOL_VERSION, op: 'drain' };
      const unsigned = await control(nc, 'node-1', encodeJson(drain));
      assert.equal(unsigned.ok, false);
      assert.match(unsigned.error ?? '', /unsigned control request/);
      const stranger = new Signer(generateKey('operator').seed);
      const wrongKey = signControlRequest(stranger, subject, 'node-1', drain);
      assert.match((await control(nc, 'node-1', wrongKey.payload, wrongKey.headers)).error ?? '', /not a trusted operator key/);
      const operator = new Signer(readSeedFile(mesh.keys.operator.seedFile));
      const forNode2 = signControlRequest(operator, subject, 'node-2', drain);
      assert.match((await control(nc, 'node-1', forNode2.payload, forNode2.headers)).error ?? '', /is for node node-2/);
      const tampered = signControlRequest(operator, subject, 'node-1', status);
      const tamperedPayload = encodeJson({ ...(JSON.parse(new TextDecoder().decode(tampered.payload)) as object), op: 'drain' });
      assert.match((await control(nc, 'node-1', tamperedPayload, tampered.headers)).error ?? '', /signature invalid/);
      const good = signControlRequest(operator, subject, 'node-1', status);
      const first = await control(nc, 'node-1', good.payload, good.headers);
      assert.equal(first.ok, true, first.error);
      const replay = await control(nc, 'node-1', good.payload, good.headers);
      assert.equal(replay.ok, false);
      assert.match(replay.error ?? '', /replayed/);
      assert.equal(first.draining, false, 'node-1 never drained');
    } finally {
      await nc.close();
    }
    const result = await client.client.callTool({ name: 'echo_echo', arguments: { text: 'still here' } });
    assert.match(text(result), /still here/);
  });

  it('a direct call to an agent without the mesh credential gets 401; health stays open', async () => {
    const echo = `${node1Url}/mcp/echo`;
    const none = await post(echo, INITIALIZE);
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /Bearer/);
    assert.match(messageOf(none.body), /mesh credential is required/);
    assert.equal((await post(echo, INITIALIZE, { authorization: 'Bearer not-a-token' })).status, 401);
    const mesh1Key = keyFromSeed(readSeedFile(mesh.keys.mesh.seedFile));
    const strangerKey = keyFromSeed(generateKey('router').seed);
    const origin = new URL(node1Url).origin;
    const foreign = await new MeshTokenIssuer({ key: () => strangerKey }).token({ origin, server: 'echo' });
    const foreignReply = await post(echo, INITIALIZE, { authorization: `Bearer ${foreign}` });
    assert.equal(foreignReply.status, 401);
    assert.match(messageOf(foreignReply.body), /does not trust/);
    const otherNode = await new MeshTokenIssuer({ key: () => mesh1Key }).token({ origin: 'http://127.0.0.1:1', server: 'echo' });
    assert.match(messageOf((await post(echo, INITIALIZE, { authorization: `Bearer ${otherNode}` })).body), /aud/);
    const otherServer = await new MeshTokenIssuer({ key: () => mesh1Key }).token({ origin, server: 'slow' });
    assert.match(messageOf((await post(echo, INITIALIZE, { authorization: `Bearer ${otherServer}` })).body), /for server "slow"/);
    assert.equal((await fetch(`${node1Url}/metrics`)).status, 401);
    assert.equal((await fetch(`${node1Url}/nope`)).status, 401, 'unknown paths are not even routed without the credential');
    assert.equal((await fetch(`${node1Url}/healthz`)).status, 200);
    assert.equal((await fetch(`${node1Url}/readyz`)).status, 200);
    const good = await new MeshTokenIssuer({ key: () => mesh1Key }).token({ origin, server: 'echo' });
    assert.equal((await post(echo, INITIALIZE, { authorization: `Bearer ${good}` })).status, 200, 'a valid mesh token opens a session');
  });

  it('a tools/call with a token issued for another tool is refused', async () => {
    const meshKey = keyFromSeed(readSeedFile(mesh.keys.mesh.seedFile));
    const issuer = new MeshTokenIssuer({ key: () => meshKey });
    const origin = new URL(node1Url).origin;
    const echo = `${node1Url}/mcp/echo`;
    const init = await post(echo, INITIALIZE, { authorization: `Bearer ${await issuer.token({ origin, server: 'echo' })}` });
    const session = String(init.headers['mcp-session-id']);
    const call = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } });
    const wrongTool = await post(echo, call, { authorization: `Bearer ${await issuer.token({ origin, server: 'echo', tool: 'other' })}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(wrongTool.status, 403);
    assert.match(messageOf(wrongTool.body), /issued for tool "other"/);
  });

  it('a slow body (1 byte every 5 s) is timed out with 408 and the connection closed', async () => {
    const url = new URL(`${node1Url}/mcp/echo`);
    const meshKey = keyFromSeed(readSeedFile(mesh.keys.mesh.seedFile));
    const token = await new MeshTokenIssuer({ key: () => meshKey }).token({ origin: url.origin, server: 'echo' });
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'content-length': '1000' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('{');
      const trickle = setInterval(() => req.write(' '), 5000);
      req.on('close', () => clearInterval(trickle));
    });
    assert.equal(result.status, 408);
    assert.match(messageOf(result.body), /Request Timeout: the request body did not arrive within 2000 ms/);
    assert.equal((await fetch(`${node1Url}/healthz`)).status, 200, 'the agent still serves');
  });

  it('router replicas work under the permissions: a session opened on one is served by another; an agent cannot touch the session bucket or replica subjects', async () => {
    const logFrom = mesh.nats.log.length;
    const keyFile = join(mesh.dir, 'session.key');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const replicas = [await mesh.startRouter(['--session-key-file', keyFile], 'replica-a'), await mesh.startRouter(['--session-key-file', keyFile], 'replica-b')];
    // Every request of the client goes to the next replica in turn (as a per-request load balancer would).
    let turn = 0;
    const alternate = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const target = new URL(replicas[turn++ % 2]!.url);
      const url = new URL(input instanceof Request ? input.url : String(input));
      url.host = target.host;
      return fetch(url, init);
    };
    const sdk = new Client({ name: 'replicated', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(replicas[0]!.url), { fetch: alternate });
    try {
      await sdk.connect(transport);
      await until('both nodes seen by the replicas', async () => (await sdk.listTools()).tools.some((t) => t.name === 'echo_echo'), 30_000);
      for (let i = 0; i < 6; i++) assert.match(text(await sdk.callTool({ name: 'echo_echo', arguments: { text: `replica call ${i}` } })), new RegExp(`replica call ${i}`));
      assert.ok(turn >= 8, `requests went to both replicas (${turn})`);
      const violations = mesh.nats.log.slice(logFrom).split('\n').filter((l) => l.includes(mesh.routerNats.publicKey));
      assert.deepEqual(violations, [], 'no permission violation by a router');
    } finally {
      await transport.terminateSession().catch(() => {});
      await sdk.close().catch(() => {});
      await Promise.all(replicas.map((r) => r.process.stop()));
    }
    const nc = await mesh.connectAs(mesh.keys.nodes.get('node-2')!.seedFile, 'node-2-compromised');
    try {
      await assert.rejects(new Kvm(nc).open(names.sessionBucket).then((kv) => kv.keys()), /permission|timeout|violation/i);
      // A forged cancel on the replicas' subject never reaches a router: a router-side subscriber sees its own
      // marker, sent after the forgery, and not the forgery.
      const watcher = await mesh.connectAs(mesh.routerNatsSeedFile, 'replica-watcher');
      try {
        const seen: string[] = [];
        watcher.subscribe(names.allRouterReplica, { callback: (_e, m: Msg) => void seen.push(m.string()) });
        await watcher.flush();
        nc.publish(names.sessionCancels, encodeJson({ sid: 'forged', requestId: 1 }));
        await nc.flush().catch(() => {});
        watcher.publish(names.sessionCancels, encodeJson({ sid: 'marker', requestId: 1 }));
        await until('the marker arrives', () => seen.some((x) => x.includes('marker')), 10_000);
        assert.ok(!seen.some((x) => x.includes('forged')), 'the forged cancel never reached a router');
      } finally {
        await watcher.close();
      }
    } finally {
      await nc.close().catch(() => {});
    }
  });

  it('a hostile server: a ReDoS pattern stalls neither calls nor /healthz; too-deep and too-big tools are refused with a reason', async () => {
    const hostile = await mesh.startAgent('node-3', ['hostile=@flotilla/examples/hostile']);
    try {
      await until('the hostile server in the catalog', async () => (await mesh.api<{ tools: Array<{ name: string }> }>('/api/v1/tools')).tools.some((t) => t.name === 'hostile_plain'), 60_000);
      const names = (await client.client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('hostile_redos') && !names.includes('hostile_deep') && !names.includes('hostile_huge'), names.join(', '));
      await mesh.router!.waitFor((l) => l.msg === "tool refused: its definition is beyond the router's bounds" && l.tool === 'deep' && /nested deeper than 32/.test(String(l.reason)), 10_000);
      await mesh.router!.waitFor((l) => l.msg === "tool refused: its definition is beyond the router's bounds" && l.tool === 'huge', 10_000);
      await assert.rejects(client.client.callTool({ name: 'hostile_deep', arguments: {} }), /Tool hostile_deep is refused by the router: its input schema is nested deeper than 32 levels/);

      // The validation worker has loaded and compiled the schema (its start is not what is measured).
      await client.client.callTool({ name: 'hostile_redos', arguments: { text: 'aaaa' } });
      // 33 characters: about 15 s of backtracking per call in JavaScript's engine, doubling per character.
      const evil = `${'a'.repeat(32)}!`;
      const healthz = mesh.routerUrl.replace(/\/mcp$/, '/healthz');
      const probes: number[] = [];
      let probing = true;
      const prober = (async () => {
        while (probing) {
          const t = performance.now();
          assert.equal((await fetch(healthz)).status, 200);
          probes.push(performance.now() - t);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 5 }, () => client.client.callTool({ name: 'hostile_redos', arguments: { text: evil } })));
      const ms = performance.now() - started;
      probing = false;
      await prober;
      for (const r of results) {
        assert.equal(CallToolResultSchema.parse(r).isError, true);
        assert.match(text(r), /must match pattern/);
      }
      assert.ok(ms < 3000, `5 ReDoS calls took ${ms.toFixed(0)} ms`);
      assert.ok(probes.length > 0 && Math.max(...probes) < 1000, `slowest /healthz ${Math.max(...probes).toFixed(0)} ms over ${probes.length} probes`);
      assert.match(text(await client.client.callTool({ name: 'hostile_redos', arguments: { text: 'aaaa' } })), /redos ran on node-3/);
    } finally {
      await hostile.process.stop();
      mesh.agents.delete('node-3');
    }
  });

  it('the mesh key rotates without downtime: new key trusted, router switched, old key removed', async () => {
    const calls: Array<Promise<unknown>> = [];
    let failures = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const p = client.client.callTool({ name: 'echo_echo', arguments: { text: 'rotating' } }).catch(() => void failures++);
        calls.push(p);
        await p;
      }
    })();
    const oldKey = keyFromSeed(readSeedFile(mesh.keys.mesh.seedFile));
    const origin = new URL(node1Url).origin;
    const oldToken = await new MeshTokenIssuer({ key: () => oldKey }).token({ origin, server: 'echo' });
    const next = generateKey('router');
    // 1. agents trust both keys; 2. the router signs with the new one; 3. the old one is withdrawn.
    writeFileSync(mesh.keys.meshKeysFile, `${oldKey.publicKey}\n${next.publicKey}\n`);
    writeFileSync(mesh.keys.mesh.seedFile, `${next.seed}\n`, { mode: 0o600 });
    await mesh.router!.waitFor((l) => l.msg === 'mesh key reloaded; new tokens are signed with it', 20_000);
    const before = calls.length;
    await until('calls signed with the new key', () => calls.length > before + 5, 20_000);
    writeFileSync(mesh.keys.meshKeysFile, `${next.publicKey}\n`);
    await until('the old key refused', async () => (await post(`${node1Url}/mcp/echo`, INITIALIZE, { authorization: `Bearer ${oldToken}` })).status === 401, 20_000);
    const afterWithdrawal = calls.length;
    await until('calls go on after the old key left', () => calls.length > afterWithdrawal + 5, 20_000);
    running = false;
    await loop;
    assert.equal(failures, 0, `no call failed during the rotation (${calls.length} calls)`);
  });
});

describe('attacks on an open nats-server: the router itself refuses what it cannot trust', () => {
  let mesh: SecureMesh;
  let attacker: NatsConnection;
  let unsignedRouter: { url: string; process: FlotillaProcess } | undefined;

  before(async () => {
    mesh = await SecureMesh.start({ nodeIds: ['node-1'], enforceNats: false });
    await mesh.startRouter();
    await mesh.startAgent('node-1', [`echo=${ECHO}`]);
    attacker = await mesh.connectAs(undefined);
    await until('node-1 reports seen by the router', async () => (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'node-1')?.load, 60_000);
  });

  after(async () => {
    await attacker?.close().catch(() => {});
    await unsignedRouter?.process.stop();
    await mesh?.stop();
  });

  const fakeRecord = (nodeId: string, extra: Partial<NodeRecord> = {}): NodeRecord => ({
    v: PROTOCOL_VERSION,
    nodeId,
    instanceId: `fake-${nodeId}`,
    mcpBaseUrl: 'http://127.0.0.1:9',
    servers: [{ name: 'echo', path: '/mcp/echo', toolDigest: 'sha256:fake', toolCount: 1 }],
    version: '0.1.0',
    capacity: 64,
    startedAt: Date.now(),
    draining: false,
    ...extra,
  });

  it('fake node records (unsigned, from an untrusted issuer, copied credential, bad signature) never join', async () => {
    const kv = await new Kvm(attacker).create(names.registryBucket);
    const ping = () => ({ at: Date.now(), inflight: 0, queued: 0, eventLoopLagMs: 0, uptimeS: 1, status: 'ok' as const });
    await kv.put('nodes.fake-unsigned', encodeJson({ record: fakeRecord('fake-unsigned'), ping: ping() }));
    const rogueIssuer = generateKey('issuer');
    const rogueNode = new Signer(generateKey('node').seed);
    const rogue = fakeRecord('fake-rogue-issuer', { nodeKey: rogueNode.publicKey, credential: issueNodeCredential(rogueIssuer.seed, { nodeId: 'fake-rogue-issuer', nodeKey: rogueNode.publicKey }) });
    await kv.put('nodes.fake-rogue-issuer', encodeJson({ record: rogue, ping: ping(), sig: signRecord(rogueNode, rogue) }));
    // node-1's real key and credential, pointing at the attacker: the attacker cannot sign it as node-1.
    const node1 = readFileSync(mesh.keys.nodes.get('node-1')!.credentialFile, 'utf8').trim();
    const hijack = fakeRecord('node-1', { nodeKey: mesh.keys.nodes.get('node-1')!.publicKey, credential: node1 });
    await kv.put('nodes.fake-hijack', encodeJson({ record: { ...hijack, nodeId: 'fake-hijack' }, ping: ping(), sig: signRecord(rogueNode, hijack) }));
    const stolenCredential = fakeRecord('fake-stolen', { nodeKey: mesh.keys.nodes.get('node-1')!.publicKey, credential: node1 });
    await kv.put('nodes.fake-stolen', encodeJson({ record: stolenCredential, ping: ping(), sig: signRecord(rogueNode, stolenCredential) }));
    await mesh.router!.waitFor((l) => l.msg === 'registry record refused: node not joined' && l.nodeId === 'fake-unsigned', 20_000);
    await mesh.router!.waitFor((l) => l.msg === 'registry record refused: node not joined' && l.nodeId === 'fake-rogue-issuer' && /not trusted/.test(String(l.reason)), 20_000);
    await mesh.router!.waitFor((l) => l.msg === 'registry record refused: node not joined' && l.nodeId === 'fake-stolen' && /credential is for node node-1/.test(String(l.reason)), 20_000);
    const view = await mesh.api<NodesView>('/api/v1/nodes');
    assert.deepEqual(view.nodes.map((n) => n.nodeId), ['node-1'], 'only the real node');
    assert.equal(await routerMetric(mesh, 'flotilla_router_accepted_nodes'), 1);
    for (const key of ['nodes.fake-unsigned', 'nodes.fake-rogue-issuer', 'nodes.fake-hijack', 'nodes.fake-stolen']) await kv.delete(key);
  });

  it('forged load reports for a real node (unsigned, or signed by another key) are dropped', async () => {
    const forged = (seq: number): Uint8Array => encodeJson({ v: PROTOCOL_VERSION, nodeId: 'node-1', seq, at: Date.now(), inflight: 4242, queued: 99, capacity: 16, eventLoopLagMs: 0, draining: false, tools: {} });
    const before = { unsigned: await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'unsigned' }), bad: await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'bad-signature' }) };
    attacker.publish(names.load('node-1'), forged(1e9));
    const stranger = new Signer(generateKey('node').seed);
    const h = natsHeaders();
    const payload = forged(1e9 + 1);
    h.set(SIGNATURE_HEADER, stranger.sign(names.load('node-1'), payload));
    attacker.publish(names.load('node-1'), payload, { headers: h });
    await attacker.flush();
    await until('both forgeries dropped', async () =>
      (await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'unsigned' })) > before.unsigned &&
      (await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'bad-signature' })) > before.bad);
    const load = (await mesh.api<NodesView>('/api/v1/nodes')).nodes[0]!.load!;
    assert.notEqual(load.inflight, 4242);
    assert.ok(load.seq < 1e9);
  });

  it("a replayed (captured, real, signed) load report is dropped, and a report on another node's subject too", async () => {
    const captured = await new Promise<Msg>((resolve) => {
      const sub = attacker.subscribe(names.load('node-1'), { max: 1, callback: (_e, m) => resolve(m) });
      void sub;
    });
    const capturedSeq = (JSON.parse(new TextDecoder().decode(captured.data)) as LoadReport).seq;
    await until('a newer report reached the router', async () => (await mesh.api<NodesView>('/api/v1/nodes')).nodes[0]!.load!.seq > capturedSeq, 20_000);
    const before = await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'stale-seq' });
    const h = natsHeaders();
    h.set(SIGNATURE_HEADER, captured.headers!.get(SIGNATURE_HEADER));
    attacker.publish(names.load('node-1'), captured.data, { headers: h });
    // The same signed bytes on another subject: the signature covers the subject.
    attacker.publish(names.load('node-2'), captured.data, { headers: h });
    await attacker.flush();
    await until('the replay dropped', async () => (await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'stale-seq' })) > before);
    assert.ok((await mesh.api<NodesView>('/api/v1/nodes')).nodes[0]!.load!.seq > capturedSeq, 'the view never went back');
  });

  it("a huge seq or a far-future at (even signed with the node's own key) does not block the node's real reports", async () => {
    const node = new Signer(readSeedFile(mesh.keys.nodes.get('node-1')!.seedFile));
    const send = (seq: number, at: number): void => {
      const payload = encodeJson({ v: PROTOCOL_VERSION, nodeId: 'node-1', seq, at, inflight: 777, queued: 0, capacity: 16, eventLoopLagMs: 0, draining: false, tools: {} });
      const h = natsHeaders();
      h.set(SIGNATURE_HEADER, node.sign(names.load('node-1'), payload));
      attacker.publish(names.load('node-1'), payload, { headers: h });
    };
    const skewBefore = await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'clock-skew' });
    send(Number.MAX_SAFE_INTEGER, Date.now() + 3_600_000);
    await attacker.flush();
    await until('the far-future report dropped', async () => (await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'clock-skew' })) > skewBefore);
    send(Number.MAX_SAFE_INTEGER, Date.now());
    await attacker.flush();
    await until('the huge seq seen', async () => (await mesh.api<NodesView>('/api/v1/nodes')).nodes[0]!.load!.seq === Number.MAX_SAFE_INTEGER);
    await until("the node's own reports take over again", async () => {
      const load = (await mesh.api<NodesView>('/api/v1/nodes')).nodes[0]!.load!;
      return load.seq < 1e6 && load.inflight !== 777;
    });
  });

  it('reports for 20,000 made-up node ids leave the router holding state for its one real node', async () => {
    const before = await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'unknown-node' });
    for (let i = 0; i < 20_000; i++) {
      const id = `made-up-${i}`;
      attacker.publish(names.load(id), encodeJson({ v: PROTOCOL_VERSION, nodeId: id, seq: 1, at: Date.now(), inflight: 1, queued: 0, capacity: 16, eventLoopLagMs: 0, draining: false, tools: { [`s/t${i}`]: { ewmaMs: 1, completed: 1 } } }));
      if (i % 1000 === 999) await attacker.flush();
    }
    await attacker.flush();
    await until('all dropped as unknown nodes', async () => (await routerMetric(mesh, 'flotilla_router_reports_dropped_total', { reason: 'unknown-node' })) >= before + 20_000, 60_000);
    assert.equal(await routerMetric(mesh, 'flotilla_router_report_nodes'), 1);
  });

  it('unsigned agents join only a router whose operator opted out, which says so at start', async () => {
    const unsignedAgent = await (async () => {
      const p = FlotillaProcess.spawn('old-node', ['agent', '--node-id', 'old-node', '--nats', mesh.nats.url, '--port', '0', '--grpc-port', '0', '--server', `echo=${ECHO}`, '--insecure'], { FLOTILLA_INSECURE: '0' });
      await p.ready(60_000);
      return p;
    })();
    try {
      assert.ok(unsignedAgent.lines.some((l) => l.msg === 'security off: records and reports are unsigned (routers accept them only when opted out)'));
      await mesh.router!.waitFor((l) => l.msg === 'registry record refused: node not joined' && l.nodeId === 'old-node', 20_000);
      const optOut = await mesh.startRouter(['--allow-unsigned-nodes'], 'opt-out-router');
      unsignedRouter = optOut;
      assert.ok(optOut.process.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('security off: unsigned node records and reports are accepted')));
      await until('the opt-out router has both nodes', async () => {
        const view = (await (await fetch(optOut.url.replace(/\/mcp$/, '/api/v1/nodes'))).json()) as NodesView;
        return view.nodes.map((n) => n.nodeId).sort().join(',') === 'node-1,old-node';
      }, 30_000);
      assert.deepEqual((await mesh.api<NodesView>('/api/v1/nodes')).nodes.map((n) => n.nodeId), ['node-1'], 'the strict router still refuses it');
    } finally {
      await unsignedAgent.stop();
    }
  });
});
