/**
 * The cap on sessions per identity holds across router replicas: two `flotilla router` processes on one
 * nats-server (one session key), `--max-sessions-per-identity 3`, one API key. Sessions opened on either
 * replica count on both (each replica publishes its per-identity counts on the replicas' heartbeat
 * subject); the next initialize on either replica gets HTTP 429 / -32020, and closing a session on one
 * replica frees a slot on the other. No agent is needed: the cap is the router's own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { rawPost } from '../../packages/router/test/fixtures/mcpClient.js';
import { eventually } from '../harness/eventually.js';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';

const run = promisify(execFile);
const RATE_LIMITED = -32020;
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cap-test', version: '1' } } });

let nats: NatsServerProcess;
let dir: string;
let routerA: FlotillaProcess;
let routerB: FlotillaProcess;
let urlA: string;
let urlB: string;
let key: string;
let opsKey: string;
let tagA: string;
let tagB: string;

const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

/** Opens a session for the key on `url`; the session id, or the refusal. */
async function initialize(url: string): Promise<{ sessionId: string } | { status: number; code: number; message: string }> {
  const r = await rawPost(url, INIT, bearer(key));
  const sessionId = r.headers.get('mcp-session-id');
  if (r.status === 200 && sessionId) return { sessionId };
  const error = (r.json as { error: { code: number; message: string } }).error;
  return { status: r.status, code: error.code, message: error.message };
}

async function open(url: string): Promise<string> {
  const r = await initialize(url);
  assert.ok('sessionId' in r, `initialize on ${url}: ${JSON.stringify(r)}`);
  return r.sessionId;
}

async function close(url: string, sessionId: string): Promise<void> {
  const r = await fetch(url, { method: 'DELETE', headers: { ...bearer(key), 'mcp-session-id': sessionId } });
  assert.equal(r.status, 200);
}

/** Waits until the router at `url` has heard that replica `tag` holds `sessions` sessions. */
async function sees(url: string, tag: string, sessions: number): Promise<void> {
  await eventually(async () => {
    const r = await fetch(url.replace(/\/mcp$/, '/api/v1/replicas'), { headers: bearer(opsKey) });
    const body = (await r.json()) as { replicas: Array<{ tag: string; sessions: number }> };
    assert.equal(body.replicas.find((x) => x.tag === tag)?.sessions, sessions, JSON.stringify(body));
  }, 20_000, 100);
}

before(async () => {
  nats = await NatsServerProcess.start();
  dir = await mkdtemp(join(tmpdir(), 'flotilla-session-cap-'));
  const keysFile = join(dir, 'keys.json');
  key = (await run(process.execPath, [CLI_BIN, 'keys', 'create', '--file', keysFile, '--subject', 'bot'])).stdout.trim();
  opsKey = (await run(process.execPath, [CLI_BIN, 'keys', 'create', '--file', keysFile, '--subject', 'operator', '--role', 'flotilla:ops'])).stdout.trim();
  const args = ['router', '--nats', nats.url, '--port', '0', '--api-keys-file', keysFile, '--max-sessions-per-identity', '3'];
  const env = { FLOTILLA_SESSION_KEY: randomBytes(32).toString('base64') };
  routerA = FlotillaProcess.spawn('router-a', args, env);
  routerB = FlotillaProcess.spawn('router-b', args, env);
  const [readyA, readyB] = await Promise.all([routerA.ready(60_000), routerB.ready(60_000)]);
  [urlA, urlB, tagA, tagB] = [String(readyA.url), String(readyB.url), String(readyA.replica), String(readyB.replica)];
  await Promise.all([sees(urlA, tagB, 0), sees(urlB, tagA, 0)]);
});

after(async () => {
  await Promise.all([routerA, routerB].filter(Boolean).map((p) => p.stop()));
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the cap on sessions per identity counts the sessions of every replica', async () => {
  const a1 = await open(urlA);
  await sees(urlB, tagA, 1);
  await open(urlB);
  await sees(urlA, tagB, 1);
  await open(urlA);
  await sees(urlB, tagA, 2);

  // Three sessions across the mesh: the next initialize is refused on either replica.
  for (const url of [urlA, urlB]) {
    const refused = await initialize(url);
    assert.ok(!('sessionId' in refused), `refused on ${url}`);
    assert.equal(refused.status, 429);
    assert.equal(refused.code, RATE_LIMITED);
    assert.match(refused.message, /this identity holds its maximum of 3 sessions/);
  }
  await routerB.waitFor((l) => l.msg === 'refused a client session: the identity holds its maximum of sessions' && l.sessions === 3);

  // Closing a session on A frees a slot on B once B hears of it.
  await close(urlA, a1);
  await sees(urlB, tagA, 1);
  const b2 = await open(urlB);
  await sees(urlA, tagB, 2);
  const again = await initialize(urlA);
  assert.ok(!('sessionId' in again) && again.status === 429, 'full again');
  await close(urlB, b2);
});

test('a replica that stops no longer counts: its sessions are gone from the others at once', async () => {
  await sees(urlA, tagB, 1);
  await routerB.stop();
  await eventually(async () => {
    const r = await fetch(urlA.replace(/\/mcp$/, '/api/v1/replicas'), { headers: bearer(opsKey) });
    const body = (await r.json()) as { replicas: Array<{ tag: string; sessions: number }> };
    assert.equal(body.replicas.find((x) => x.tag === tagB)?.sessions ?? 0, 0);
  }, 20_000, 100);
  await open(urlA);
});
