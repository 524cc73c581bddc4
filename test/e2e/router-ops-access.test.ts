/**
 * The router's operations endpoints behind the front door, and the access policy read again when its file
 * changes, with real processes: a nats-server, one agent hosting echo, and a `flotilla router` with API
 * keys (made with `flotilla keys create`) and a policy file. `/api/v1/*` and the dashboard's live stream
 * need a credential (401 with WWW-Authenticate), of an identity with the ops permission (403 saying what
 * is missing); the dashboard page signs in with a key and gets a short-lived cookie its stream and polls
 * carry; probes and /metrics stay open. Changing the policy file under the running router allows a call it
 * denied (and the reverse), and a broken file keeps the policy last read (logged with the field, counted).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { rawPost } from '../../packages/router/test/fixtures/mcpClient.js';
import { eventually } from '../harness/eventually.js';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { launchChromium } from '../harness/headlessChromium.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { parseExposition } from '../harness/prometheusText.js';

const run = promisify(execFile);
const ACCESS_DENIED = -32019;

let nats: NatsServerProcess;
let dir: string;
let policyFile: string;
let agent: FlotillaProcess;
let router: FlotillaProcess;
let mcpUrl: string;
let base: string;
/** Role `flotilla:ops`: the built-in ops permission. */
let opsKey: string;
/** Role `ci`: tools as the policy says, no ops. */
let ciKey: string;
/** Subject `watcher`: ops by a policy rule. */
let watcherKey: string;
const clients: Client[] = [];

const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

async function createKey(keysFile: string, subject: string, role: string): Promise<string> {
  return (await run(process.execPath, [CLI_BIN, 'keys', 'create', '--file', keysFile, '--subject', subject, '--role', role])).stdout.trim();
}

/** Replaces the policy file at once (a new file renamed over the old), as editors and config managers do. */
async function writePolicy(text: string): Promise<void> {
  const next = `${policyFile}.${randomBytes(4).toString('hex')}`;
  await writeFile(next, text);
  await rename(next, policyFile);
}

const policy = (ci: { tools?: string[]; ops?: boolean }): string =>
  JSON.stringify({
    default: 'deny',
    rules: [
      { name: 'ops', match: { roles: ['flotilla:ops'] }, allow: { servers: ['*'] } },
      { name: 'watchers', match: { subjects: ['watcher'] }, allow: { ops: true } },
      { name: 'ci', match: { roles: ['ci'] }, allow: { tools: ci.tools ?? [], ops: ci.ops ?? false } },
    ],
  });

async function connectAs(credential: string): Promise<Client> {
  const client = new Client({ name: 'ops-access-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: bearer(credential) } }));
  clients.push(client);
  return client;
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'ops-access-test', version: '1' } } });
let nextId = 2;

/** Opens a session with plain HTTP (no SDK client: no stream of its own); the headers of its requests. */
async function rawSession(credential: string): Promise<Record<string, string>> {
  const init = await rawPost(mcpUrl, INIT, bearer(credential));
  assert.equal(init.status, 200);
  const headers = { ...bearer(credential), 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
  assert.equal((await rawPost(mcpUrl, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers)).status, 202);
  return headers;
}

/** One request in the session; its result, or its JSON-RPC error code. */
async function request(session: Record<string, string>, method: string, params: Record<string, unknown>): Promise<{ result: Record<string, unknown> } | { code: number }> {
  const r = await rawPost(mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }), session);
  const message = r.json as { result?: Record<string, unknown>; error?: { code: number } };
  return message.error ? { code: message.error.code } : { result: message.result ?? {} };
}

/** The outcome of calling echo: `ok`, or the JSON-RPC error code. */
async function echoOutcome(session: Record<string, string>): Promise<'ok' | number> {
  const r = await request(session, 'tools/call', { name: 'echo_echo', arguments: { text: 'hi' } });
  return 'code' in r ? r.code : 'ok';
}

before(async () => {
  nats = await NatsServerProcess.start();
  dir = await mkdtemp(join(tmpdir(), 'flotilla-ops-access-'));
  const keysFile = join(dir, 'keys.json');
  opsKey = await createKey(keysFile, 'operator', 'flotilla:ops');
  ciKey = await createKey(keysFile, 'ci-bot', 'ci');
  watcherKey = await createKey(keysFile, 'watcher', 'viewer');
  policyFile = join(dir, 'policy.json');
  await writePolicy(policy({}));
  agent = FlotillaProcess.spawn('ops1', ['agent', '--node-id', 'ops1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--grpc-port', '0']);
  router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0', '--api-keys-file', keysFile, '--policy-file', policyFile], {
    FLOTILLA_SESSION_KEY: randomBytes(32).toString('base64'),
  });
  mcpUrl = String((await router.ready(60_000)).url);
  base = mcpUrl.replace(/\/mcp$/, '');
  await agent.ready(60_000);
  const ops = await connectAs(opsKey);
  await eventually(async () => assert.ok((await ops.listTools()).tools.some((t) => t.name === 'echo_echo')), 60_000, 250);
});

after(async () => {
  if (process.env.DEBUG_OPS_TEST) console.error(JSON.stringify(router?.lines.slice(-30)));
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all([router, agent].filter(Boolean).map((p) => p.stop()));
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('operations endpoints behind the front door', () => {
  it('answer 401 with WWW-Authenticate without a credential, and with a bad one', async () => {
    for (const path of ['/api/v1/nodes', '/api/v1/tools', '/api/v1/dashboard', '/dashboard/events']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 401, path);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/, path);
      const body = (await r.json()) as { error: string };
      assert.equal(body.error, 'unauthorized');
    }
    const bad = await fetch(`${base}/api/v1/nodes`, { headers: bearer(`${ciKey.slice(0, -4)}AAAA`) });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('answer 403 saying what is missing to an identity without the ops permission', async () => {
    const r = await fetch(`${base}/api/v1/nodes`, { headers: bearer(ciKey) });
    assert.equal(r.status, 403);
    const body = (await r.json()) as { error: string; missing: string; message: string; principal: string };
    assert.equal(body.error, 'forbidden');
    assert.equal(body.missing, 'flotilla:ops');
    assert.match(body.message, /flotilla:ops/);
    assert.equal(body.principal, `key:${ciKey.split('_')[1]}`);
    await router.waitFor((l) => l.msg === 'refused an operations request: the identity lacks the ops permission');
  });

  it('answer 200 to the flotilla:ops role and to an identity a policy rule allows ops', async () => {
    for (const key of [opsKey, watcherKey]) {
      for (const path of ['/api/v1/nodes', '/api/v1/tools', '/api/v1/dashboard']) {
        const r = await fetch(`${base}${path}`, { headers: bearer(key) });
        assert.equal(r.status, 200, path);
      }
    }
    const nodes = (await (await fetch(`${base}/api/v1/nodes`, { headers: bearer(opsKey) })).json()) as { nodes: Array<{ nodeId: string }> };
    assert.deepEqual(nodes.nodes.map((n) => n.nodeId), ['ops1']);
    const events = await fetch(`${base}/dashboard/events`, { headers: bearer(watcherKey) });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);
    await events.body?.cancel();
  });

  it('keep probes, /metrics and the static dashboard page open', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/dashboard', '/dashboard/dashboard.js']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 200, path);
      await r.arrayBuffer();
    }
  });

  it('let the dashboard sign in with a key: a short-lived HttpOnly cookie its stream and polls carry', async () => {
    assert.equal((await fetch(`${base}/dashboard/session`, { method: 'POST' })).status, 401);
    const refused = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: bearer(ciKey) });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('set-cookie'), null);

    const signedIn = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: bearer(opsKey) });
    assert.equal(signedIn.status, 200);
    const setCookie = signedIn.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^flotilla_ops=[^;]+; Path=\/; Max-Age=(\d+); HttpOnly; SameSite=Strict$/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)![1]);
    assert.ok(maxAge > 0 && maxAge <= 900, `Max-Age ${maxAge} s`);
    const cookie = setCookie.split(';')[0]!;

    const snapshot = await fetch(`${base}/api/v1/dashboard`, { headers: { cookie } });
    assert.equal(snapshot.status, 200);
    assert.equal(((await snapshot.json()) as { v: number }).v, 1);
    const events = await fetch(`${base}/dashboard/events`, { headers: { cookie } });
    assert.equal(events.status, 200);
    await events.body?.cancel();

    // A cookie the router did not seal is no credential.
    assert.equal((await fetch(`${base}/api/v1/dashboard`, { headers: { cookie: 'flotilla_ops=forged' } })).status, 401);
    const signedOut = await fetch(`${base}/dashboard/session`, { method: 'DELETE', headers: { cookie } });
    assert.equal(signedOut.status, 204);
    assert.match(signedOut.headers.get('set-cookie') ?? '', /^flotilla_ops=; Path=\/; Max-Age=0/);
  });
});

describe('the access policy file, changed under the running router', () => {
  it('allows a call it denied, gives ops, keeps the last good policy when the file breaks, then denies again', { timeout: 180_000 }, async () => {
    const ci = await rawSession(ciKey);
    assert.equal(await echoOutcome(ci), ACCESS_DENIED);
    assert.equal((await fetch(`${base}/api/v1/nodes`, { headers: bearer(ciKey) })).status, 403);

    await writePolicy(policy({ tools: ['echo_*'], ops: true }));
    await eventually(async () => assert.equal(await echoOutcome(ci), 'ok'), 20_000, 200);
    assert.equal((await fetch(`${base}/api/v1/nodes`, { headers: bearer(ciKey) })).status, 200);
    const listed = await request(ci, 'tools/list', {});
    assert.ok('result' in listed && (listed.result['tools'] as Array<{ name: string }>).some((t) => t.name === 'echo_echo'), 'its list shows the tool now');
    await router.waitFor((l) => l.msg === 'access policy reloaded');

    await writePolicy(JSON.stringify({ default: 'deny', rules: [{ name: 5, match: {} }] }));
    const error = await eventually(() => {
      const line = router.lines.find((l) => l.msg === 'access policy file is invalid; the policy last read stays in force');
      assert.ok(line);
      return line;
    }, 20_000, 200);
    assert.match(String(error.error), /rules\.0\.name/);
    assert.equal(await echoOutcome(ci), 'ok', 'the policy last read stays in force');
    const metrics = parseExposition(await (await fetch(`${base}/metrics`)).text());
    assert.equal(metrics.value('flotilla_router_policy_reloads_total', { result: 'invalid' }), 1);
    assert.equal(metrics.value('flotilla_router_policy_reloads_total', { result: 'ok' }), 1);

    await writePolicy(policy({}));
    await eventually(async () => assert.equal(await echoOutcome(ci), ACCESS_DENIED), 20_000, 200);
    assert.equal((await fetch(`${base}/api/v1/nodes`, { headers: bearer(ciKey) })).status, 403);
  });
});

describe('the dashboard page behind the front door, in headless Chromium', () => {
  it('asks for a credential, refuses one without the ops permission, and goes live with one that has it', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${base}/dashboard`);
      await eventually(async () => assert.equal(await page.getAttribute('#live', 'data-state'), 'signed-out'), 20_000);
      assert.equal(await page.isVisible('#sign-in'), true);

      await page.fill('#sign-in-key', ciKey);
      await page.click('#sign-in-submit');
      await eventually(async () => assert.match((await page.textContent('#sign-in-error')) ?? '', /flotilla:ops/), 20_000);
      assert.equal(await page.getAttribute('#live', 'data-state'), 'signed-out');

      await page.fill('#sign-in-key', opsKey);
      await page.click('#sign-in-submit');
      await eventually(async () => assert.equal(await page.getAttribute('#live', 'data-state'), 'live'), 30_000);
      assert.equal(await page.isVisible('#sign-in'), false);
      await eventually(async () => assert.equal(await page.locator('#nodes tr[data-node-id="ops1"]').count(), 1), 30_000);
      assert.equal(await page.inputValue('#sign-in-key'), '', 'the page keeps no credential');
    } finally {
      await browser.close();
    }
  });
});
