/**
 * The agent's own defences, on a real agent in this process (real nats-server, real HTTP): bad input that
 * the SDK answered badly (bad path encoding, empty batch, duplicate ids, non-object arguments), slow
 * bodies and headers, the connection cap, the mesh credential on every endpoint but health, and signed
 * records and reports.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SIGNATURE_HEADER, canonicalJson, recordSigningContext, subjects } from '@flotilla/protocol';
import { MeshTokenIssuer, SignatureVerifier, createLocalKeySet, keyFromSeed, readSeedFile, type LocalKeySet } from '@flotilla/trust';
import { Kvm } from '@nats-io/kv';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';

let nats: NatsServerProcess;
let nc: NatsConnection;
let dir: string;
let keys: LocalKeySet;
let a: TestAgent;
let issuer: MeshTokenIssuer;

const NODE = 'secure-node';

before(async () => {
  nats = await NatsServerProcess.start();
  nc = await connect({ servers: nats.url });
  dir = await mkdtemp(join(tmpdir(), 'flotilla-agent-keys-'));
  keys = createLocalKeySet(dir, [NODE]);
  const node = keys.nodes.get(NODE)!;
  a = await startTestAgent({
    nodeId: NODE,
    natsUrl: nats.url,
    servers: [{ name: 'echo', module: '@flotilla/examples/echo' }],
    bodyTimeoutMs: 1000,
    headersTimeoutMs: 1000,
    maxConnections: 8,
    security: {
      nodeSeed: readSeedFile(node.seedFile),
      nodeCredential: readFileSync(node.credentialFile, 'utf8'),
      operatorKeysFile: keys.operatorsFile,
      meshKeysFile: keys.meshKeysFile,
    },
  });
  const meshKey = keyFromSeed(readSeedFile(keys.mesh.seedFile));
  issuer = new MeshTokenIssuer({ key: () => meshKey });
});

after(async () => {
  await a?.agent.stop();
  await nc?.close();
  await nats?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function auth(tool?: string): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await issuer.token({ origin: new URL(a.agent.url).origin, server: 'echo', ...(tool ? { tool } : {}) })}` };
}

async function post(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(`${a.agent.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });
  const text = await res.text();
  const sse = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as unknown);
  return { status: res.status, json: sse.length > 0 ? (sse.length === 1 ? sse[0] : sse) : (JSON.parse(text) as unknown), headers: res.headers };
}

/** Opens an MCP session with a mesh token; resolves with the headers that continue it. */
async function session(tool?: string): Promise<Record<string, string>> {
  const init = await post('/mcp/echo', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }), await auth());
  assert.equal(init.status, 200);
  return { ...(await auth(tool)), 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
}

type RpcError = { id: unknown; error: { code: number; message: string } };

describe('bad input the SDK answered badly', () => {
  test('POST /mcp/%E0 (bad percent-encoding) is a 400 with a JSON-RPC error, not a 500', async () => {
    const r = await post('/mcp/%E0', '{}', await auth());
    assert.equal(r.status, 400);
    assert.equal((r.json as RpcError).error.code, -32600);
    assert.match((r.json as RpcError).error.message, /not valid percent-encoding/);
    const anonymous = await post('/mcp/%E0', '{}');
    assert.equal(anonymous.status, 400, 'the same answer without a token (the path is judged before the credential)');
  });

  test('an empty batch [] is a 400 Invalid Request, not a 202', async () => {
    const r = await post('/mcp/echo', '[]', await session());
    assert.equal(r.status, 400);
    assert.equal((r.json as RpcError).error.code, -32600);
    assert.match((r.json as RpcError).error.message, /empty batch/);
  });

  test('non-object arguments get -32602 with a one-line message, not -32603 with a schema dump', async () => {
    const headers = await session('echo');
    for (const args of ['"text"', '[1,2]', '42', 'null']) {
      const r = await post('/mcp/echo', `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":${args}}}`, headers);
      assert.equal(r.status, 200);
      const e = r.json as RpcError;
      assert.equal(e.id, 7);
      assert.equal(e.error.code, -32602, args);
      assert.match(e.error.message, /^Invalid params: tools\/call arguments must be a JSON object, got (string|an array|number|null)$/);
    }
    const noParams = await post('/mcp/echo', '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":"x"}', headers);
    assert.equal((noParams.json as RpcError).error.code, -32602);
  });

  test('two requests with one id in a batch: both answered with an error, nothing run', async () => {
    const headers = await session('echo');
    const call = (id: number, text: string): unknown => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text } } });
    const r = await post('/mcp/echo', JSON.stringify([call(5, 'a'), call(5, 'b')]), headers);
    assert.equal(r.status, 400);
    const answers = r.json as RpcError[];
    assert.equal(answers.length, 2);
    for (const ans of answers) {
      assert.equal(ans.id, 5);
      assert.equal(ans.error.code, -32600);
      assert.match(ans.error.message, /request id 5 appears more than once/);
    }
  });

  test('in a batch with one bad message, every request gets an answer saying why', async () => {
    const headers = await session('echo');
    const r = await post('/mcp/echo', JSON.stringify([
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: 'x' } },
      { jsonrpc: '2.0', id: 2, method: 'ping' },
    ]), headers);
    const answers = r.json as RpcError[];
    assert.deepEqual(answers.map((x) => [x.id, x.error.code]), [[1, -32602], [2, -32600]]);
  });
});

describe('slow clients and the connection cap', () => {
  test('a body trickling 1 byte every 5 s gets 408 and the connection closes', async () => {
    const token = await auth();
    const url = new URL(`${a.agent.url}/mcp/echo`);
    const result = await new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': '500', ...token } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.write('{');
      const trickle = setInterval(() => req.write(' '), 5000);
      req.on('close', () => clearInterval(trickle));
    });
    assert.equal(result.status, 408);
    assert.equal(result.connection, 'close');
    assert.match((JSON.parse(result.body) as RpcError).error.message, /Request Timeout: the request body did not arrive within 1000 ms/);
    await a.logs.waitFor((l) => l.msg === 'request body too slow; answered 408 and closed the connection');
  });

  test('headers that never finish are cut by the headers timeout (408)', async () => {
    const port = Number(new URL(a.agent.url).port);
    const reply = await new Promise<string>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1');
      let got = '';
      s.on('connect', () => s.write('POST /mcp/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '));
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.match(reply, /^HTTP\/1\.1 408/);
  });

  test('connections beyond --max-connections are refused, and service resumes when they close', async () => {
    const port = Number(new URL(a.agent.url).port);
    const open: Socket[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const s = tcpConnect(port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        open.push(s);
      }
      const refused = tcpConnect(port, '127.0.0.1');
      const closed = await new Promise<boolean>((resolve) => {
        refused.once('close', () => resolve(true));
        refused.once('data', () => resolve(false));
        refused.once('connect', () => refused.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
        refused.on('error', () => {});
      });
      assert.equal(closed, true, 'the connection past the cap was closed without an answer');
      await a.logs.waitFor((l) => l.msg === 'connection refused: the agent holds its maximum of connections');
    } finally {
      for (const s of open) s.destroy();
    }
    await waitUntil(async () => (await fetch(`${a.agent.url}/healthz`).then((r) => r.status, () => 0)) === 200, 10_000, 'health after the connections closed');
  });
});

describe('the mesh credential', () => {
  test('no token: 401 with WWW-Authenticate everywhere but the health endpoints', async () => {
    const r = await post('/mcp/echo', '{}');
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="flotilla-mesh"/);
    assert.equal((await fetch(`${a.agent.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${a.agent.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${a.agent.url}/readyz`)).status, 200);
  });

  test('an expired token is refused; a token for the agent works for /metrics', async () => {
    const meshKey = keyFromSeed(readSeedFile(keys.mesh.seedFile));
    const old = new MeshTokenIssuer({ key: () => meshKey, now: () => Date.now() - 600_000 });
    const expired = await old.token({ origin: new URL(a.agent.url).origin, server: 'echo' });
    const r = await post('/mcp/echo', '{}', { authorization: `Bearer ${expired}` });
    assert.equal(r.status, 401);
    assert.match((r.json as RpcError).error.message, /exp/);
    const metrics = await fetch(`${a.agent.url}/metrics`, { headers: await auth() });
    assert.equal(metrics.status, 200);
  });

  test('the agent says at start what is on', () => {
    const line = a.logs.find((l) => l.msg === 'security: node key, operator-signed control and mesh tokens on');
    assert.ok(line, 'security line');
    assert.equal(line.mcp, 'mesh tokens required');
  });
});

describe('signed records and reports', () => {
  test('load reports carry the node signature over subject and payload', async () => {
    const subject = subjects().load(NODE);
    const msg = await new Promise<Msg>((resolve) => nc.subscribe(subject, { max: 1, callback: (_e, m) => resolve(m) }));
    const sig = msg.headers?.get(SIGNATURE_HEADER);
    assert.ok(sig, 'signature header');
    const v = new SignatureVerifier();
    const nodeKey = keys.nodes.get(NODE)!.publicKey;
    assert.equal(v.verify(nodeKey, subject, msg.data, sig), true);
    assert.equal(v.verify(nodeKey, subjects().load('other'), msg.data, sig), false, 'bound to its subject');
  });

  test('the registry record names the node key and credential and is signed over its canonical JSON', async () => {
    const kv = await new Kvm(nc).open(subjects().registryBucket);
    const entry = await kv.get(`nodes.${NODE}`);
    const value = JSON.parse(new TextDecoder().decode(entry!.value)) as { record: Record<string, unknown>; sig: string };
    assert.equal(value.record.nodeKey, keys.nodes.get(NODE)!.publicKey);
    assert.match(String(value.record.credential), /\./);
    assert.equal(new SignatureVerifier().verifyText(String(value.record.nodeKey), recordSigningContext(NODE), canonicalJson(value.record), value.sig), true);
  });
});
