/**
 * The router's front door, played by an attacker and by honest clients, against real processes: a
 * nats-server, one agent hosting echo, slow and docs, and two `flotilla router` replicas sharing a
 * session key, with JWT auth (a local issuer serving its JWKS over HTTP, tokens signed with jose), API
 * keys (made with `flotilla keys create`) and an access policy. Covers: unauthenticated clients (401 with
 * WWW-Authenticate and the protected resource metadata), bad/expired/wrong-audience/forged tokens, API
 * keys, policy filtering of lists and a denied call (counted), a session used by another identity (on
 * either replica), session floods, slow bodies and headers, and refusing to run open beyond loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { rawPost, until } from '../../packages/router/test/fixtures/mcpClient.js';
import { LocalJwtIssuer } from '../../packages/router/test/fixtures/LocalJwtIssuer.js';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';

const run = promisify(execFile);

let nats: NatsServerProcess;
let issuer: LocalJwtIssuer;
let dir: string;
let agent: FlotillaProcess;
let routerA: FlotillaProcess;
let routerB: FlotillaProcess;
let urlA: string;
let urlB: string;
let botKey: string;
let botKeyId: string;
const clients: Client[] = [];

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'curl', version: '1' } } });
const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

/** An SDK client sending `credential` as a bearer token. */
async function connectAs(url: string, credential: string, name = 'front-door-test'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: bearer(credential) } }));
  clients.push(client);
  return client;
}

const POLICY = {
  default: 'deny',
  rules: [
    { name: 'ops', match: { roles: ['ops'] }, allow: { servers: ['*'] }, label: 'ops' },
    { name: 'readers', match: { scopes: ['mcp:read'] }, allow: { tools: ['echo_*'], prompts: ['docs_*'], resources: ['docs://readme'] } },
    { name: 'bots', match: { subjects: ['ci-bot'] }, allow: { servers: ['echo', 'slow'] } },
  ],
};

before(async () => {
  nats = await NatsServerProcess.start();
  issuer = await LocalJwtIssuer.start();
  dir = await mkdtemp(join(tmpdir(), 'flotilla-front-door-'));
  const keysFile = join(dir, 'keys.json');
  // The CLI prints the key once and stores only its hash.
  const created = await run(process.execPath, [CLI_BIN, 'keys', 'create', '--file', keysFile, '--subject', 'ci-bot', '--role', 'ci']);
  botKey = created.stdout.trim();
  botKeyId = botKey.split('_')[1]!;
  assert.match(botKey, /^flt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  const policyFile = join(dir, 'policy.json');
  await writeFile(policyFile, JSON.stringify(POLICY));
  const sessionKey = randomBytes(32).toString('base64');
  agent = FlotillaProcess.spawn('fd1', ['agent', '--node-id', 'fd1', '--server', 'echo=@flotilla/examples/echo', '--server', 'slow=@flotilla/examples/slow', '--server', 'docs=@flotilla/examples/docs', '--nats', nats.url, '--port', '0', '--grpc-port', '0']);
  const routerArgs = (): string[] => [
    'router', '--nats', nats.url, '--port', '0',
    '--auth-issuer', issuer.issuer, '--auth-audience', 'http://flotilla.test/mcp', '--auth-jwks-url', issuer.jwksUrl,
    '--api-keys-file', keysFile, '--policy-file', policyFile,
    '--max-sessions-per-identity', '3', '--request-timeout-ms', '1500', '--headers-timeout-ms', '1000',
  ];
  routerA = FlotillaProcess.spawn('router-a', routerArgs(), { FLOTILLA_SESSION_KEY: sessionKey });
  routerB = FlotillaProcess.spawn('router-b', routerArgs(), { FLOTILLA_SESSION_KEY: sessionKey });
  [urlA, urlB] = await Promise.all([routerA.ready(60_000).then((l) => String(l.url)), routerB.ready(60_000).then((l) => String(l.url))]);
  await agent.ready(60_000);
  const ops = await connectAs(urlA, await issuer.token({ sub: 'root', roles: ['ops'] }));
  await until('the agent tools', async () => (await ops.listTools()).tools.some((t) => t.name === 'docs_list_pages') && (await ops.listTools()).tools.some((t) => t.name === 'slow_work'), 60_000);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all([routerA, routerB, agent].filter(Boolean).map((p) => p.stop()));
  await issuer?.stop();
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('router front door', () => {
  it('says at start that clients must authenticate', () => {
    assert.ok(routerA.lines.some((l) => l.msg === 'front door: clients must authenticate'));
    assert.ok(!routerA.lines.some((l) => String(l.msg).includes('RUNS OPEN')));
  });

  it('an unauthenticated client gets 401 with WWW-Authenticate pointing at the protected resource metadata (RFC 9728)', async () => {
    const r = await rawPost(urlA, INIT);
    assert.equal(r.status, 401);
    const challenge = r.headers.get('www-authenticate') ?? '';
    const metadataUrl = `${urlA.replace(/\/mcp$/, '')}/.well-known/oauth-protected-resource/mcp`;
    assert.equal(challenge, `Bearer resource_metadata="${metadataUrl}"`);
    const doc = (await (await fetch(metadataUrl)).json()) as Record<string, unknown>;
    assert.equal(doc['resource'], urlA);
    assert.deepEqual(doc['authorization_servers'], [issuer.issuer]);
    assert.deepEqual(doc['bearer_methods_supported'], ['header']);
    assert.equal((await fetch(`${urlA.replace(/\/mcp$/, '')}/.well-known/oauth-protected-resource`)).status, 200);
    // The SDK client cannot get in either.
    const client = new Client({ name: 'anonymous', version: '1' });
    await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(urlA))), /401|Unauthorized/);
    // GET and DELETE too.
    assert.equal((await fetch(urlA, { headers: { accept: 'text/event-stream' } })).status, 401);
  });

  it('bad, expired, wrong-audience, wrong-issuer and forged tokens get 401 error="invalid_token", saying why', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['garbage', 'abc.def.ghi', /not valid/],
      ['expired', await issuer.token({ sub: 'alice', roles: ['ops'], expiresIn: -60 }), /expired/],
      ['wrong audience', await issuer.token({ sub: 'alice', roles: ['ops'], aud: 'http://other.test/mcp' }), /'aud' claim/],
      ['wrong issuer', await issuer.token({ sub: 'alice', roles: ['ops'], iss: 'http://evil.test' }), /'iss' claim/],
      ['forged', await issuer.token({ sub: 'alice', roles: ['ops'], foreignKey: true }), /not valid/],
      ['unknown API key', `flt_${'0'.repeat(16)}_${'A'.repeat(43)}`, /not known/],
    ];
    for (const [what, token, why] of cases) {
      const r = await rawPost(urlA, INIT, bearer(token));
      assert.equal(r.status, 401, what);
      const challenge = r.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer resource_metadata="[^"]+", error="invalid_token", error_description="[^"]+"$/, what);
      assert.match(challenge, why, what);
    }
    const metrics = await (await fetch(`${urlA.replace(/\/mcp$/, '')}/metrics`)).text();
    assert.match(metrics, /flotilla_router_auth_failures_total\{reason="invalid"\} ([6-9]|\d\d+)/);
  });

  it('the policy filters what a reader sees (tools, prompts, resources) and denies a call with -32019, counted and logged with the identity', async () => {
    const reader = await connectAs(urlA, await issuer.token({ sub: 'reader', scope: 'mcp:read' }));
    const tools = (await reader.listTools()).tools.map((t) => t.name);
    assert.ok(tools.length > 0 && tools.every((n) => n.startsWith('echo_')), `reader sees ${tools.join(', ')}`);
    const prompts = (await reader.listPrompts()).prompts.map((p) => p.name);
    assert.ok(prompts.length > 0 && prompts.every((n) => n.startsWith('docs_')), `reader sees prompts ${prompts.join(', ')}`);
    assert.deepEqual((await reader.listResources()).resources.map((r) => r.uri), ['docs://readme']);
    assert.deepEqual((await reader.listResourceTemplates()).resourceTemplates, []);
    const ok = await reader.callTool({ name: 'echo_echo', arguments: { text: 'hi' } });
    assert.equal(ok.isError, undefined);
    await assert.rejects(reader.callTool({ name: 'slow_work', arguments: { steps: 1, stepMs: 1 } }), (e: McpError) => e.code === -32019 && /Access denied: reader may not use tool slow_work/.test(e.message));
    await assert.rejects(reader.readResource({ uri: 'docs://pages/intro' }), (e: McpError) => e.code === -32019);
    assert.ok((await reader.readResource({ uri: 'docs://readme' })).contents.length > 0);
    const principal = `jwt:${issuer.issuer}#reader`;
    const metrics = await (await fetch(`${urlA.replace(/\/mcp$/, '')}/metrics`)).text();
    assert.ok(metrics.includes(`flotilla_router_access_denied_total{identity="${principal}",kind="tool"} 1`), metrics.split('\n').filter((l) => l.includes('access_denied')).join('\n'));
    assert.ok(metrics.includes(`flotilla_router_client_requests_total{identity="${principal}"}`));
    await until('the denial log line', () => routerA.lines.find((l) => l.msg === 'access denied by policy' && l.principal === principal && l.name === 'slow_work'));
    // The call that ran is logged with the identity too.
    assert.ok(routerA.lines.some((l) => l.principal === principal && l.msg === 'client session opened'));
  });

  it('an API key made with `flotilla keys create` works, under its own grants', async () => {
    const bot = await connectAs(urlA, botKey);
    const tools = (await bot.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('slow_work') && tools.includes('echo_echo') && !tools.some((n) => n.startsWith('docs_')), tools.join(', '));
    const r = await bot.callTool({ name: 'slow_work', arguments: { steps: 1, stepMs: 1 } });
    assert.notEqual(r.isError, true);
    assert.ok(routerA.lines.some((l) => l.principal === `key:${botKeyId}` && l.msg === 'client session opened'));
  });

  it("a session cannot be used by another identity, on any replica; its owner can use it on either", async () => {
    const aliceToken = await issuer.token({ sub: 'alice', roles: ['ops'] });
    const malloryToken = await issuer.token({ sub: 'mallory', roles: ['ops'] });
    const init = await rawPost(urlA, INIT, bearer(aliceToken));
    assert.equal(init.status, 200);
    const sessionId = init.headers.get('mcp-session-id')!;
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    const headers = (token: string): Record<string, string> => ({ ...bearer(token), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
    for (const url of [urlA, urlB]) {
      assert.equal((await rawPost(url, list, headers(malloryToken))).status, 404, `mallory on ${url}`);
      assert.equal((await rawPost(url, list, headers(botKey))).status, 404, `an API key on ${url}`);
      assert.equal((await rawPost(url, list, headers('garbage.token.here'))).status, 401, `no identity on ${url}`);
    }
    // Replica B takes the session up for its owner (the identity is sealed into the session id).
    const own = await rawPost(urlB, list, headers(aliceToken));
    assert.equal(own.status, 200);
    assert.ok(Array.isArray((own.json as { result: { tools: unknown[] } }).result.tools));
    assert.ok(routerB.lines.some((l) => l.msg === 'refused a session to an identity other than the one that opened it' && l.principal === `jwt:${issuer.issuer}#mallory`));
  });

  it('an identity holding its maximum of sessions gets 429 RateLimited on initialize (session floods)', async () => {
    const token = await issuer.token({ sub: 'flooder', roles: ['ops'] });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await rawPost(urlA, INIT, bearer(token))).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const r = await rawPost(urlA, INIT, bearer(token));
    assert.equal((r.json as { error: { code: number } }).error.code, -32020);
    assert.equal(r.headers.get('retry-after'), '5');
    // Another identity is not affected.
    assert.equal((await rawPost(urlA, INIT, bearer(await issuer.token({ sub: 'someone-else', roles: ['ops'] })))).status, 200);
  });

  it('a body sent 1 byte at a time, or headers that never end, are cut (408 / closed) within the request timeout', async () => {
    const { port } = new URL(urlA);
    const slow = (first: string, drip: string): Promise<{ ms: number; answer: string }> =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        let answer = '';
        const socket = netConnect(Number(port), '127.0.0.1', () => socket.write(first));
        const timer = setInterval(() => socket.writable && socket.write(drip), 300);
        socket.on('data', (d) => (answer += d.toString()));
        socket.on('close', () => {
          clearInterval(timer);
          resolve({ ms: Date.now() - started, answer });
        });
        socket.on('error', () => {});
        setTimeout(() => reject(new Error('not cut within 10 s')), 10_000).unref();
      });
    const body = await slow(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${botKey}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{`, ' ');
    assert.match(body.answer, /^HTTP\/1\.1 408/);
    assert.ok(body.ms < 5000, `slow body cut after ${body.ms} ms`);
    const headers = await slow(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`, 'X-Drip: 1\r\n');
    assert.ok(headers.ms < 5000, `slow headers cut after ${headers.ms} ms`);
    // The router still serves.
    assert.equal((await rawPost(urlA, INIT, bearer(botKey))).status, 200);
  });
});

describe('API key rotation', () => {
  it('a key revoked with `flotilla keys revoke` is refused within seconds, without a restart', async () => {
    assert.equal((await rawPost(urlA, INIT, bearer(botKey))).status, 200);
    await run(process.execPath, [CLI_BIN, 'keys', 'revoke', '--file', join(dir, 'keys.json'), botKeyId]);
    const refused = await until('the revoked key refused', async () => {
      const r = await rawPost(urlA, INIT, bearer(botKey));
      return r.status === 401 ? r : undefined;
    }, 15_000);
    assert.match(refused.headers.get('www-authenticate') ?? '', /disabled/);
  });
});

describe('auth is off only when configured off', () => {
  it('a router on a non-loopback address without auth refuses to start', async () => {
    // The harness runs processes with FLOTILLA_INSECURE=1 (keys off); this one must not have it, and gets
    // the control plane's keys, so that only the missing client authentication is left to refuse.
    const meshSeed = join(dir, 'mesh.nk');
    await run(process.execPath, [CLI_BIN, 'keys', 'gen', '--role', 'router', '--out', meshSeed]);
    const keys = ['--allow-unsigned-nodes', '--mesh-seed-file', meshSeed];
    const p = FlotillaProcess.spawn('open-router', ['router', '--nats', nats.url, '--port', '0', '--host', '0.0.0.0', ...keys], { FLOTILLA_INSECURE: '0' });
    const started = p.ready(30_000).then(() => 'started', () => 'exited');
    const { code } = await Promise.race([p.exited, started.then(async (s) => {
      if (s === 'started') await p.stop();
      return p.exited;
    })]);
    assert.equal(code, 1);
    assert.match(p.stderr.join(''), /refusing to listen on 0\.0\.0\.0 without authentication.*--insecure/);
  });

  it('with --insecure it starts, and says loudly that it runs open; on loopback it says so too', async () => {
    for (const args of [['--host', '0.0.0.0', '--insecure'], []]) {
      const p = FlotillaProcess.spawn('open-router', ['router', '--nats', nats.url, '--port', '0', ...args]);
      try {
        await p.ready(60_000);
        const warning = p.lines.find((l) => String(l.msg).startsWith('ROUTER RUNS OPEN'));
        assert.ok(warning, `no open warning with ${args.join(' ')}`);
        assert.equal(warning.level, 40);
        const url = String(p.lines.find((l) => l.msg === 'router ready')!.url);
        assert.equal((await rawPost(url, INIT)).status, 200);
        // An open router does not claim to be a protected resource.
        assert.equal((await fetch(url.replace(/\/mcp$/, '/.well-known/oauth-protected-resource'))).status, 404);
      } finally {
        await p.stop();
      }
    }
  });
});
