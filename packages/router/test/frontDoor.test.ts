/**
 * The front door's parts on their own: JWT verification against a real JWKS served over HTTP (and what a
 * cached verification costs), API keys, the access policy and its globs, the fair queue, token buckets.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import { AccessPolicy, ApiKeyStore, FairScheduler, FrontDoor, Glob, IdentityLabels, JwtVerifier, TokenBuckets, createApiKey, type Identity } from '../src/index.js';
import { LocalJwtIssuer } from './fixtures/LocalJwtIssuer.js';

const AUD = 'http://flotilla.test/mcp';
const logger = createLogger({ name: 'test', level: 'silent' });

describe('JwtVerifier', () => {
  let issuer: LocalJwtIssuer;
  let verifier: JwtVerifier;
  before(async () => {
    issuer = await LocalJwtIssuer.start();
    verifier = new JwtVerifier({ issuer: issuer.issuer, audience: [AUD], jwksUrl: issuer.jwksUrl });
  });
  after(() => issuer.stop());

  it('accepts a valid token: subject, issuer, scopes, roles, principal', async () => {
    const v = await verifier.verify(await issuer.token({ sub: 'alice', scope: 'mcp:read mcp:write', roles: ['ops'] }));
    assert.ok(v.ok);
    assert.equal(v.identity.subject, 'alice');
    assert.equal(v.identity.issuer, issuer.issuer);
    assert.deepEqual(v.identity.scopes, ['mcp:read', 'mcp:write']);
    assert.deepEqual(v.identity.roles, ['ops']);
    assert.equal(v.identity.principal, `jwt:${issuer.issuer}#alice`);
  });

  it('refuses expired, wrong-audience, wrong-issuer, forged and garbage tokens, saying why', async () => {
    const cases: Array<[string, Promise<string> | string, RegExp]> = [
      ['expired', issuer.token({ sub: 'a', expiresIn: -120 }), /expired/],
      ['wrong audience', issuer.token({ sub: 'a', aud: 'http://other.test/mcp' }), /"aud"/],
      ['wrong issuer', issuer.token({ sub: 'a', iss: 'http://evil.test' }), /"iss"/],
      ['forged', issuer.token({ sub: 'a', foreignKey: true }), /not valid/],
      ['garbage', 'not.a.jwt', /not valid/],
    ];
    for (const [what, token, why] of cases) {
      const v = await verifier.verify(await token);
      assert.equal(v.ok, false, what);
      assert.ok(!v.ok && v.reason === 'invalid', what);
      assert.match(!v.ok ? v.description : '', why, what);
    }
  });

  it('fetches the JWKS once, again only for a key it does not know (rotation)', async () => {
    const fresh = new JwtVerifier({ issuer: issuer.issuer, audience: [AUD], jwksUrl: issuer.jwksUrl, jwksCooldownMs: 200 });
    const before = issuer.jwksFetches;
    for (let i = 0; i < 20; i++) assert.ok((await fresh.verifyUncached(await issuer.token({ sub: `u${i}` }))).ok);
    assert.equal(issuer.jwksFetches - before, 1);
    await issuer.rotate(true);
    await new Promise((r) => setTimeout(r, 250));
    assert.ok((await fresh.verify(await issuer.token({ sub: 'after-rotation' }))).ok);
    assert.equal(issuer.jwksFetches - before, 2);
  });

  it('a cached token verifies well under 0.1 ms; the full check is measured too', async () => {
    const token = await issuer.token({ sub: 'bench', scope: 'mcp:read' });
    verifier = new JwtVerifier({ issuer: issuer.issuer, audience: [AUD], jwksUrl: issuer.jwksUrl });
    assert.ok((await verifier.verify(token)).ok);
    const n = 20_000;
    let t0 = performance.now();
    for (let i = 0; i < n; i++) if (!verifier.cached(token)) assert.fail('not cached');
    const cachedUs = ((performance.now() - t0) / n) * 1000;
    t0 = performance.now();
    for (let i = 0; i < n; i++) await verifier.verify(token);
    const cachedAsyncUs = ((performance.now() - t0) / n) * 1000;
    const m = 500;
    t0 = performance.now();
    for (let i = 0; i < m; i++) await verifier.verifyUncached(token);
    const fullUs = ((performance.now() - t0) / m) * 1000;
    process.stderr.write(`# JWT verify: cached ${cachedUs.toFixed(2)} µs/call (through the async verify: ${cachedAsyncUs.toFixed(2)} µs), full signature check (ES256, JWKS cached) ${fullUs.toFixed(1)} µs/call\n`);
    assert.ok(cachedUs < 20, `cached verification took ${cachedUs} µs`);
    assert.ok(cachedAsyncUs < 50, `cached verification through verify() took ${cachedAsyncUs} µs`);
  });

  it('says "unavailable" (not invalid) when the JWKS cannot be fetched', async () => {
    const down = new JwtVerifier({ issuer: issuer.issuer, audience: [AUD], jwksUrl: 'http://127.0.0.1:1/jwks.json' });
    const v = await down.verify(await issuer.token({ sub: 'a' }));
    assert.ok(!v.ok && v.reason === 'unavailable');
  });
});

describe('API keys', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'flotilla-keys-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('stores only the hash; verifies the key, refuses a wrong one, a disabled one and an expired one; reloads the file', async () => {
    const a = createApiKey({ subject: 'ci-bot', roles: ['ci'] });
    const b = createApiKey({ subject: 'old-bot', expiresAt: '2001-01-01T00:00:00Z' });
    const path = join(dir, 'keys.json');
    await writeFile(path, JSON.stringify({ keys: [a.entry, b.entry] }));
    // The secret is base64url and may itself contain '_': take everything after the id.
    const secret = a.key.slice(a.key.indexOf(a.entry.id) + a.entry.id.length + 1);
    assert.equal(secret.length, 43);
    assert.ok(!JSON.stringify(a.entry).includes(secret), 'the secret is not stored');
    const store = await ApiKeyStore.load(path, 0);
    const ok = await store.verify(a.key);
    assert.ok(ok.ok);
    assert.equal(ok.identity.principal, `key:${a.entry.id}`);
    assert.deepEqual(ok.identity.roles, ['ci']);
    assert.match(JSON.stringify(await store.verify(`${a.key.slice(0, -2)}xx`)), /not known/);
    assert.match(JSON.stringify(await store.verify(b.key)), /expired/);
    assert.match(JSON.stringify(await store.verify('flt_nope')), /malformed/);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(path, JSON.stringify({ keys: [{ ...a.entry, disabled: true }] }));
    assert.match(JSON.stringify(await store.verify(a.key)), /disabled/);
  });

  it('a bad key file is refused at load with the field named', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ keys: [{ id: 'short', hash: 'md5:x', subject: '' }] }));
    await assert.rejects(ApiKeyStore.load(path), /keys\.0\.id: id must be 8-32 letters or digits/);
  });
});

describe('AccessPolicy and Glob', () => {
  const who = (subject: string, scopes: string[] = [], roles: string[] = []): Identity => ({ kind: 'jwt', subject, issuer: 'i', scopes, roles, principal: `jwt:i#${subject}` });
  const policy = AccessPolicy.fromDocument({
    rules: [
      { name: 'ops', match: { roles: ['ops'] }, allow: { servers: ['*'] }, label: 'ops' },
      { name: 'readers', match: { scopes: ['mcp:read'] }, allow: { tools: ['echo_*', 'docs_search'], resources: ['docs://*'], prompts: ['docs_*'] }, deny: { tools: ['echo_secret'] } },
      { name: 'nobody-fails', match: { subjects: ['intern-*'] }, deny: { servers: ['failing'] } },
    ],
  });

  it('allows by server or name glob, deny wins, and the default is deny', () => {
    const ops = policy.grantsFor(who('root', [], ['ops']));
    assert.ok(ops.allows('tool', 'failing', 'failing_fail'));
    assert.equal(ops.label, 'ops');
    const reader = policy.grantsFor(who('r', ['mcp:read']));
    assert.ok(reader.allows('tool', 'echo', 'echo_echo'));
    assert.ok(!reader.allows('tool', 'echo', 'echo_secret'));
    assert.ok(reader.allows('tool', 'docs', 'docs_search'));
    assert.ok(!reader.allows('tool', 'docs', 'docs_write'));
    assert.ok(reader.allows('resource', 'docs', 'docs://guide/intro'));
    assert.ok(!reader.allows('resource', 'stateful', 'stateful://x'));
    const intern = policy.grantsFor(who('intern-1', ['mcp:read'], ['ops']));
    assert.ok(!intern.allows('tool', 'failing', 'failing_fail'), 'deny wins over ops');
    assert.ok(!policy.grantsFor(who('stranger')).allows('tool', 'echo', 'echo_echo'));
  });

  it('rejects a bad policy with the field named', () => {
    assert.throws(() => AccessPolicy.fromDocument({ rules: [{ name: 'x', allow: { tool: ['a'] } }] }), /rules\.0\.allow: Unrecognized key: "tool"/);
    assert.throws(() => AccessPolicy.fromDocument({ rules: [{ name: 'x' }, { name: 'x' }] }), /"x" is used by an earlier rule/);
    assert.throws(() => AccessPolicy.fromDocument({ default: 'maybe', rules: [] }), /default/);
  });

  it('globs: * and ?, exact names, and no blow-up on hostile patterns', () => {
    assert.ok(new Glob('echo_*').matches('echo_echo'));
    assert.ok(!new Glob('echo_*').matches('xecho_echo'));
    assert.ok(new Glob('a?c').matches('abc'));
    assert.ok(new Glob('exact').matches('exact') && !new Glob('exact').matches('exactly'));
    const hostile = new Glob(`${'*a'.repeat(60)}b`);
    const t0 = performance.now();
    assert.ok(!hostile.matches('a'.repeat(5000)));
    assert.ok(performance.now() - t0 < 500);
  });

  it('identity labels are bounded: the first N principals, then "other", configured labels always', () => {
    const labels = new IdentityLabels(2);
    assert.equal(labels.labelOf(who('a')), 'jwt:i#a');
    assert.equal(labels.labelOf(who('b')), 'jwt:i#b');
    assert.equal(labels.labelOf(who('c')), 'other');
    assert.equal(labels.labelOf(who('a')), 'jwt:i#a');
    assert.equal(labels.labelOf(who('d'), 'team-d'), 'team-d');
  });
});

describe('FairScheduler', () => {
  const limits = { maxConcurrent: 4, perClientConcurrency: 3, perSessionConcurrency: 2, perClientQueue: 5, maxQueued: 100, maxQueueWaitMs: 60_000 };

  it("serves waiting clients in turn: a flooding client's backlog does not delay another client", async () => {
    const s = new FairScheduler(limits);
    const started: string[] = [];
    const releases: Array<() => void> = [];
    const take = (client: string, session: string, tag: string): Promise<void> =>
      s.acquire(client, session, undefined).then((r) => {
        started.push(tag);
        releases.push(r);
      });
    // A floods: 2 run (its session cap), 3 wait (its other session gets 1 more: client cap 3).
    const flood = [take('A', 'a1', 'A1'), take('A', 'a1', 'A2'), take('A', 'a1', 'A3'), take('A', 'a1', 'A4'), take('A', 'a1', 'A5')];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, ['A1', 'A2']);
    // B arrives while A has a backlog: starts at once (the router has slots, and B has none running).
    await take('B', 'b1', 'B1');
    assert.deepEqual(started, ['A1', 'A2', 'B1']);
    // A full router: C waits, and is served before A's backlog when a slot frees.
    await take('D', 'd1', 'D1');
    const c = take('C', 'c1', 'C1');
    releases[0]!();
    await c;
    assert.deepEqual(started.slice(-1), ['C1'], `order ${started.join(',')}`);
    assert.deepEqual(s.stats(), { running: 4, queued: 3, clients: 4 });
    void flood;
  });

  it('refuses past the per-client queue with RateLimited and retryAfterMs; cancels waiters on abort', async () => {
    const s = new FairScheduler({ ...limits, maxConcurrent: 1 });
    await s.acquire('A', 'a', undefined);
    const ac = new AbortController();
    const waiting = s.acquire('A', 'a', ac.signal);
    for (let i = 0; i < 4; i++) void s.acquire('A', 'a', undefined).catch(() => {});
    await assert.rejects(s.acquire('A', 'a', undefined), (e: { code: number; data: { retryAfterMs: number; limit: string } }) => e.code === FlotillaErrorCode.RateLimited && e.data.retryAfterMs > 0 && e.data.limit === 'client_queue');
    ac.abort('gone');
    await assert.rejects(waiting, /cancelled/);
    assert.equal(s.stats().queued, 4);
  });

  it('a wait longer than maxQueueWaitMs is refused', async () => {
    const s = new FairScheduler({ ...limits, maxConcurrent: 1, maxQueueWaitMs: 50 });
    await s.acquire('A', 'a', undefined);
    // The scheduler's timers do not keep a process alive (a waiting request's connection does).
    const alive = setTimeout(() => {}, 5000);
    await assert.rejects(s.acquire('B', 'b', undefined), (e: { data: { limit: string } }) => e.data.limit === 'queue_wait');
    clearTimeout(alive);
  });
});

describe('TokenBuckets', () => {
  it('allows the burst, then one request per 1/rate, and says how long to wait', () => {
    const b = new TokenBuckets(10, 3);
    const t = 1000;
    assert.equal(b.take('k', t), 0);
    assert.equal(b.take('k', t), 0);
    assert.equal(b.take('k', t), 0);
    const wait = b.take('k', t);
    assert.ok(wait > 90 && wait <= 100, String(wait));
    assert.equal(b.take('k', t + 100), 0);
    assert.equal(b.take('other', t), 0);
  });
});

describe('FrontDoor', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'flotilla-door-'))));
  after(() => rm(dir, { recursive: true, force: true }));
  const req = (headers: Record<string, string>): IncomingMessage => ({ headers: { host: '127.0.0.1:8080', ...headers }, socket: { remoteAddress: '127.0.0.1' } }) as unknown as IncomingMessage;

  it('challenges with the metadata URL of the configured resource and its scopes; admits a key; is open without credentials configured', async () => {
    const key = createApiKey({ subject: 'door-bot' });
    await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: [key.entry] }));
    const door = await FrontDoor.create({ options: { apiKeysFile: join(dir, 'keys.json'), resource: 'https://mcp.example.com/mcp', scopesSupported: ['mcp:read', 'mcp:write'] }, logger });
    const missing = await door.admit(req({}));
    assert.ok(!missing.ok && missing.status === 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write"');
    const basic = await door.admit(req({ authorization: 'Basic dXNlcjpwYXNz' }));
    assert.ok(!basic.ok && /error="invalid_token"/.test(basic.headers['www-authenticate']!));
    const ok = await door.admit(req({ authorization: `bearer ${key.key}` }));
    assert.ok(ok.ok && ok.caller.identity.subject === 'door-bot');
    const open = await FrontDoor.create({ options: {}, logger });
    assert.equal(open.enforcing, false);
    const anonymous = await open.admit(req({}));
    assert.ok(anonymous.ok && anonymous.caller.identity.principal === 'anonymous');
  });

  it('refuses to start with a bad policy, naming the field', async () => {
    await assert.rejects(FrontDoor.create({ options: { apiKeysFile: join(dir, 'keys.json'), policy: { rules: [{ name: 'x', allow: { servers: 'echo' } }] } }, logger }), /auth\.policy: rules\.0\.allow\.servers/);
  });
});
