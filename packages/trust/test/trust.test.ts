/**
 * The trust primitives, each failure path: keys and seeds, signatures, node credentials, record trust,
 * control-request authentication, mesh tokens, reloading key files.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { PROTOCOL_VERSION, canonicalJson, decodeJson, ControlRequestSchema, type NodeRecord } from '@flotilla/protocol';
import {
  ControlAuthenticator,
  KeyFormatError,
  KeyList,
  MeshTokenIssuer,
  MeshTokenVerifier,
  NodeRecordTrust,
  ReloadingFile,
  SignatureVerifier,
  Signer,
  checkNodeCredential,
  generateKey,
  issueNodeCredential,
  keyFromSeed,
  parsePublicKeys,
  readSeedFile,
  signControlRequest,
  signRecord,
} from '@flotilla/trust';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-trust-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const verifier = new SignatureVerifier();

describe('keys', () => {
  test('a bad seed is refused without echoing it; a bad public key names itself', () => {
    const secretish = 'SUAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX';
    assert.throws(() => keyFromSeed(secretish), (e: Error) => e instanceof KeyFormatError && !e.message.includes(secretish));
    assert.throws(() => parsePublicKeys('UABC, not-a-key'), /"UABC" is not an NKey public key/);
    const good = generateKey('node');
    const flipped = good.publicKey.slice(0, 10) + (good.publicKey[10] === 'A' ? 'B' : 'A') + good.publicKey.slice(11);
    assert.equal(verifier.verify(flipped, 'c', new Uint8Array([1]), new Signer(good.seed).sign('c', new Uint8Array([1]))), false, 'a key with a bad checksum verifies nothing');
  });

  test('seed files: a plain seed file and a NATS .creds file; a file without a seed names the file only', () => {
    const key = generateKey('node');
    const plain = join(dir, 'plain.nk');
    writeFileSync(plain, `${key.seed}\n`);
    assert.equal(readSeedFile(plain), key.seed);
    const creds = join(dir, 'user.creds');
    writeFileSync(creds, `-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${key.seed}\n------END USER NKEY SEED------\n`);
    assert.equal(readSeedFile(creds), key.seed);
    const empty = join(dir, 'empty.nk');
    writeFileSync(empty, 'nothing here\n');
    assert.throws(() => readSeedFile(empty), new RegExp(`${empty} holds no NKey seed`));
    assert.throws(() => readSeedFile(join(dir, 'missing.nk')), /cannot read seed file .*ENOENT/);
  });

  test('generated keys: issuers are O keys, everything else U keys (usable as NATS users)', () => {
    assert.match(generateKey('issuer').publicKey, /^O/);
    for (const role of ['node', 'router', 'operator'] as const) assert.match(generateKey(role).publicKey, /^U/);
  });
});

describe('signatures', () => {
  const signer = new Signer(generateKey('node').seed);
  const payload = new TextEncoder().encode('{"a":1}');
  const sig = signer.sign('flotilla.v1.load.n1', payload);

  test('verify: the right key, context and payload only', () => {
    assert.equal(verifier.verify(signer.publicKey, 'flotilla.v1.load.n1', payload, sig), true);
    assert.equal(verifier.verify(signer.publicKey, 'flotilla.v1.load.n2', payload, sig), false, 'another subject');
    assert.equal(verifier.verify(signer.publicKey, 'flotilla.v1.load.n1', new TextEncoder().encode('{"a":2}'), sig), false, 'another payload');
    assert.equal(verifier.verify(generateKey('node').publicKey, 'flotilla.v1.load.n1', payload, sig), false, 'another key');
    assert.equal(verifier.verify(signer.publicKey, 'flotilla.v1.load.n1', payload, 'short'), false, 'malformed signature');
    assert.equal(verifier.verify('nonsense', 'flotilla.v1.load.n1', payload, sig), false, 'malformed key');
  });

  test('the decoded-key cache is bounded', () => {
    const small = new SignatureVerifier(2);
    for (let i = 0; i < 5; i++) small.verify(generateKey('node').publicKey, 'c', payload, sig);
    assert.equal((small as unknown as { keys: Map<string, unknown> }).keys.size, 2);
  });
});

describe('node credentials', () => {
  const issuer = generateKey('issuer');
  const node = generateKey('node');
  const issuers = new Set([issuer.publicKey]);
  const now = Date.now();

  test('a credential binds a key to a node id, signed by a trusted issuer', () => {
    const cred = issueNodeCredential(issuer.seed, { nodeId: 'n1', nodeKey: node.publicKey, ttlSeconds: 60, now });
    const ok = checkNodeCredential(cred, { nodeId: 'n1', nodeKey: node.publicKey }, issuers, verifier, now);
    assert.equal(ok.ok, true);
    const fail = (expected: { nodeId: string; nodeKey: string }, trusted: Set<string>, at: number): string => {
      const r = checkNodeCredential(cred, expected, trusted, verifier, at);
      return r.ok ? 'ok' : r.reason;
    };
    assert.match(fail({ nodeId: 'n2', nodeKey: node.publicKey }, issuers, now), /for node n1/);
    assert.match(fail({ nodeId: 'n1', nodeKey: generateKey('node').publicKey }, issuers, now), /another key/);
    assert.match(fail({ nodeId: 'n1', nodeKey: node.publicKey }, new Set([generateKey('issuer').publicKey]), now), /not trusted/);
    assert.match(fail({ nodeId: 'n1', nodeKey: node.publicKey }, issuers, now + 61_000), /expired/);
  });

  test('tampered or malformed credentials are refused', () => {
    const cred = issueNodeCredential(issuer.seed, { nodeId: 'n1', nodeKey: node.publicKey, now });
    const [body, sig] = cred.split('.');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${Buffer.from(JSON.stringify({ ...claims, nodeId: 'n9' })).toString('base64url')}.${sig}`;
    const r = checkNodeCredential(forged, { nodeId: 'n9', nodeKey: node.publicKey }, issuers, verifier, now);
    assert.deepEqual(r, { ok: false, reason: 'credential signature invalid' });
    assert.deepEqual(checkNodeCredential('garbage', { nodeId: 'n1', nodeKey: node.publicKey }, issuers, verifier, now), { ok: false, reason: 'malformed credential' });
    const notJson = `${Buffer.from('nope').toString('base64url')}.${sig}`;
    assert.deepEqual(checkNodeCredential(notJson, { nodeId: 'n1', nodeKey: node.publicKey }, issuers, verifier, now), { ok: false, reason: 'malformed credential claims' });
  });
});

describe('record trust', () => {
  const issuer = generateKey('issuer');
  const nodeKey = generateKey('node');
  const signer = new Signer(nodeKey.seed);
  const record = (extra: Partial<NodeRecord> = {}): NodeRecord => ({
    v: PROTOCOL_VERSION, nodeId: 'n1', instanceId: 'i', mcpBaseUrl: 'http://127.0.0.1:1', servers: [], version: '0', capacity: 1, startedAt: 1, draining: false,
    nodeKey: signer.publicKey, credential: issueNodeCredential(issuer.seed, { nodeId: 'n1', nodeKey: signer.publicKey }), ...extra,
  });
  const proofOf = (r: NodeRecord, by: Signer = signer) => ({ signed: canonicalJson(r), sig: signRecord(by, r) });

  test('signed by the node key with a trusted credential: accepted, with the key for its reports', () => {
    const trust = new NodeRecordTrust({ policy: { issuers: () => new Set([issuer.publicKey]), allowUnsigned: false }, verifier });
    const r = record();
    assert.deepEqual(trust.check(r, proofOf(r)), { ok: true, nodeKey: signer.publicKey });
  });

  test('refused: unsigned, changed after signing, signed by another key, copied signature on other content', () => {
    const trust = new NodeRecordTrust({ policy: { issuers: () => new Set([issuer.publicKey]), allowUnsigned: false }, verifier });
    const r = record();
    const { nodeKey: _k, credential: _c, ...bare } = r;
    assert.match(JSON.stringify(trust.check(bare as NodeRecord, undefined)), /unsigned record/);
    const good = proofOf(r);
    assert.equal(trust.check(r, good).ok, true);
    const moved = record({ mcpBaseUrl: 'http://evil:1' });
    assert.deepEqual(trust.check(moved, { signed: canonicalJson(moved), sig: good.sig }), { ok: false, reason: 'record signature invalid' }, 'the cached verdict does not cover other content');
    const other = new Signer(generateKey('node').seed);
    assert.deepEqual(trust.check(r, proofOf(r, other)), { ok: false, reason: 'record signature invalid' });
  });

  test('the opt-out accepts unsigned records but still checks signed ones; an issuer removed later stops a remembered verdict', () => {
    let issuers = new Set([issuer.publicKey]);
    const trust = new NodeRecordTrust({ policy: { issuers: () => issuers, allowUnsigned: true }, verifier });
    const r = record();
    const { nodeKey: _k, credential: _c, ...bare } = r;
    assert.deepEqual(trust.check(bare as NodeRecord, undefined), { ok: true, nodeKey: undefined });
    assert.equal(trust.check(r, proofOf(r, new Signer(generateKey('node').seed))).ok, false, 'a bad signature is refused even under the opt-out');
    assert.equal(trust.check(r, proofOf(r)).ok, true);
    issuers = new Set([generateKey('issuer').publicKey]);
    assert.equal(trust.check(r, proofOf(r)).ok, false);
  });
});

describe('control requests', () => {
  const operator = new Signer(generateKey('operator').seed);
  const subject = 'flotilla.v1.control.n1';
  let now = Date.now();
  const auth = (maxNonces = 10) => new ControlAuthenticator({ operators: () => new Set([operator.publicKey]), verifier, nodeId: 'n1', windowMs: 60_000, maxNonces, now: () => now });
  const received = (signed: { payload: Uint8Array; headers: Record<string, string> }) => {
    const decoded = decodeJson(ControlRequestSchema, signed.payload);
    assert.ok(decoded.ok);
    return { subject, payload: signed.payload, request: decoded.value, signer: signed.headers['Flotilla-Signer'], signature: signed.headers['Flotilla-Sig'] };
  };

  test('a fresh signed request passes once; its replay, an old one and a future one are refused', () => {
    const a = auth();
    const req = signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'drain' }, now);
    assert.equal(a.check(received(req)), undefined);
    assert.match(a.check(received(req)) ?? '', /replayed/);
    assert.match(a.check(received(signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'drain' }, now - 120_000))) ?? '', /off this node's clock/);
    assert.match(a.check(received(signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'drain' }, now + 120_000))) ?? '', /off this node's clock/);
  });

  test('the nonce memory is bounded: past it requests wait until old nonces leave the window', () => {
    const a = auth(2);
    for (let i = 0; i < 2; i++) assert.equal(a.check(received(signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'status' }, now))), undefined);
    assert.match(a.check(received(signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'status' }, now))) ?? '', /too many control requests/);
    now += 121_000;
    assert.equal(a.check(received(signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'status' }, now))), undefined);
  });

  test('unsigned, unknown signer, another subject: refused', () => {
    const a = auth();
    const req = signControlRequest(operator, subject, 'n1', { v: PROTOCOL_VERSION, op: 'drain' }, now);
    assert.match(a.check({ ...received(req), signer: undefined }) ?? '', /unsigned/);
    const stranger = signControlRequest(new Signer(generateKey('operator').seed), subject, 'n1', { v: PROTOCOL_VERSION, op: 'drain' }, now);
    assert.match(a.check(received(stranger)) ?? '', /not a trusted operator key/);
    const elsewhere = signControlRequest(operator, 'flotilla.v1.control.n2', 'n1', { v: PROTOCOL_VERSION, op: 'drain' }, now);
    assert.match(a.check(received(elsewhere)) ?? '', /signature invalid/);
  });
});

describe('mesh tokens', () => {
  const routerKey = generateKey('router');
  const key = keyFromSeed(routerKey.seed);
  const audience = 'http://127.0.0.1:7000';

  test('valid for its audience and server; refused when expired, for another audience, too long-lived, or tampered', async () => {
    let trusted = new Set([routerKey.publicKey]);
    const v = new MeshTokenVerifier({ keys: () => trusted, audience: () => audience });
    const issuer = new MeshTokenIssuer({ key: () => key });
    const token = await issuer.token({ origin: audience, server: 'echo', tool: 'echo' });
    const ok = await v.check(token);
    assert.equal(ok.ok && ok.claims.srv === 'echo' && ok.claims.tool === 'echo', true);
    const expired = await new MeshTokenIssuer({ key: () => key, now: () => Date.now() - 3_600_000 }).token({ origin: audience, server: 'echo' });
    assert.match(JSON.stringify(await v.check(expired)), /exp/);
    assert.match(JSON.stringify(await v.check(await issuer.token({ origin: 'http://other:1', server: 'echo' }))), /aud/);
    const long = await new MeshTokenIssuer({ key: () => key, ttlSeconds: 3600 }).token({ origin: audience, server: 'echo' });
    assert.deepEqual(await v.check(long), { ok: false, reason: 'token lifetime too long' });
    const [h, p, s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(p!, 'base64url').toString()) as object), srv: 'admin' })).toString('base64url')}.${s}`;
    assert.equal((await v.check(forged)).ok, false);
    trusted = new Set();
    assert.deepEqual(await v.check(token), { ok: false, reason: 'token signed by a key this agent does not trust' }, 'a remembered token fails once its key is withdrawn');
  });

  test('an unknown key makes the verifier look at its key file again before refusing (rotation)', async () => {
    let refreshed = 0;
    const v = new MeshTokenVerifier({ keys: () => new Set(), refreshKeys: () => (refreshed++, new Set([routerKey.publicKey])), audience: () => audience });
    const token = await new MeshTokenIssuer({ key: () => key }).token({ origin: audience, server: 'echo' });
    assert.equal((await v.check(token)).ok, true);
    assert.equal(refreshed, 1);
  });

  test('the issuer reuses a token for half its lifetime, and signs anew with a new key at once', async () => {
    let now = Date.now();
    let current = key;
    const issuer = new MeshTokenIssuer({ key: () => current, ttlSeconds: 60, now: () => now });
    const target = { origin: audience, server: 'echo' };
    const first = await issuer.token(target);
    now += 29_000;
    assert.equal(await issuer.token(target), first);
    now += 2000;
    assert.notEqual(await issuer.token(target), first);
    current = keyFromSeed(generateKey('router').seed);
    const rotated = await issuer.token(target);
    assert.equal(JSON.parse(Buffer.from(rotated.split('.')[0]!, 'base64url').toString()).kid, current.publicKey);
  });
});

describe('key files', () => {
  test('a changed file is reloaded; a broken change keeps the previous keys and is reported', () => {
    const file = join(dir, 'mesh.pub');
    const k1 = generateKey('router').publicKey;
    const k2 = generateKey('router').publicKey;
    writeFileSync(file, `${k1}\n`);
    const errors: Error[] = [];
    let now = 0;
    const list = new KeyList({ file, onError: (e) => errors.push(e) });
    assert.deepEqual([...list.current()], [k1]);
    writeFileSync(file, `${k1}\n${k2}  # the next key\n`);
    assert.deepEqual([...list.refresh()], [k1, k2]);
    writeFileSync(file, 'broken\n');
    assert.deepEqual([...list.refresh()], [k1, k2]);
    assert.match(errors[0]?.message ?? '', /"broken" is not an NKey public key/);
    const reloading = new ReloadingFile({ path: file, load: () => ++now, checkEveryMs: 1_000_000, now: () => 0 });
    writeFileSync(file, `${k2}\n`);
    assert.equal(reloading.current(), 1, 'not checked again before checkEveryMs');
    assert.equal(reloading.current(true), 2);
  });
});
