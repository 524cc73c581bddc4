/**
 * NATS credentials and TLS: the env/flag settings (validation, precedence, nothing secret in what is
 * logged), the nats.js options they make, each authentication method and TLS with a client certificate
 * against a real nats-server, and deploy/nats/flotilla.conf kept identical to natsServerConfig().
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import {
  describeNats,
  generateKey,
  natsConnectionOptions,
  natsServerConfig,
  natsSettingsFromEnv,
  readSeedFile,
  redactServers,
  resolveNatsSettings,
  type NatsSettings,
} from '@flotilla/trust';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('settings', () => {
  test('the environment convention, and flags winning over it (an explicit auth method replaces the env one)', () => {
    const env = { NATS_URL: 'nats://a:4222', NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_CA: '/ca.pem', NATS_TLS: '1', NATS_NKEY: '' };
    assert.deepEqual(natsSettingsFromEnv(env), { servers: 'nats://a:4222', user: 'u', password: 'p', caFile: '/ca.pem', tls: true });
    const resolved = resolveNatsSettings({ servers: 'nats://b:4222', nkeySeedFile: '/n.nk' }, natsSettingsFromEnv(env));
    assert.equal(resolved.servers, 'nats://b:4222');
    assert.equal(resolved.nkeySeedFile, '/n.nk');
    assert.equal(resolved.user, undefined, 'the env user/password do not mix with an nkey given explicitly');
    assert.equal(resolved.caFile, '/ca.pem', 'TLS settings still come from the env');
    assert.equal(resolveNatsSettings({}).servers, 'nats://127.0.0.1:4222');
  });

  test('invalid combinations are refused with a message that says what to fix', () => {
    assert.throws(() => resolveNatsSettings({ user: 'u', token: 't' }), /one NATS authentication method/);
    assert.throws(() => resolveNatsSettings({ password: 'p' }), /password needs a user/);
    assert.throws(() => resolveNatsSettings({ certFile: '/c.pem' }), /certificate needs its key/);
  });

  test('what is logged never holds a secret', () => {
    const s = resolveNatsSettings({ servers: 'nats://alice:s3cret@a:4222,tls://b:4222', token: 'tok3n' });
    const described = JSON.stringify(describeNats(s));
    assert.doesNotMatch(described, /s3cret|tok3n/);
    assert.match(described, /"auth":"token"/);
    assert.match(described, /"tls":"on"/);
    assert.equal(redactServers('nats://alice:s3cret@a:4222'), 'nats://***@a:4222');
    assert.match(JSON.stringify(describeNats(resolveNatsSettings({ user: 'bob', password: 'pw' }))), /"auth":"user bob"/);
  });

  test('connection options: an nkey seed file is read at each (re)connect, so it rotates in place', () => {
    const seedFile = join(dir, 'rotating.nk');
    const k1 = generateKey('node');
    writeFileSync(seedFile, `${k1.seed}\n`);
    const options = natsConnectionOptions(resolveNatsSettings({ servers: 'nats://x:1', nkeySeedFile: seedFile }), { name: 'n' });
    const auth = options.authenticator as (nonce?: string) => { nkey?: string };
    assert.equal(auth('nonce').nkey, k1.publicKey);
    const k2 = generateKey('node');
    writeFileSync(seedFile, `${k2.seed}\n`);
    assert.equal(auth('nonce').nkey, k2.publicKey);
    assert.deepEqual(options.servers, ['nats://x:1']);
    const tls = natsConnectionOptions(resolveNatsSettings({ caFile: '/ca', certFile: '/c', keyFile: '/k', inboxPrefix: '_INBOX_n1' }));
    assert.deepEqual(tls.tls, { caFile: '/ca', certFile: '/c', keyFile: '/k' });
    assert.equal(tls.inboxPrefix, '_INBOX_n1');
  });
});

/** Connects with `settings`; resolves true when the server accepted, false when it refused. */
async function accepted(settings: Partial<NatsSettings> & { servers: string }): Promise<boolean> {
  try {
    const nc = await connect(natsConnectionOptions(resolveNatsSettings(settings), { maxReconnectAttempts: 0, timeout: 5000 }));
    await nc.flush();
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

describe('each authentication method against a real nats-server', () => {
  test('user/password and NKey users: the right credential connects, a wrong or missing one does not', async () => {
    const user = generateKey('node');
    const seedFile = join(dir, 'user.nk');
    writeFileSync(seedFile, `${user.seed}\n`);
    const otherSeed = join(dir, 'other.nk');
    writeFileSync(otherSeed, `${generateKey('node').seed}\n`);
    const server = await NatsServerProcess.start({
      config: ({ port, storeDir }) =>
        `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${storeDir}" }\naccounts { A { jetstream: enabled, users: [ { user: "alice", password: "pw-1" }, { nkey: ${user.publicKey} } ] } }\n`,
    });
    try {
      assert.equal(await accepted({ servers: server.url, user: 'alice', password: 'pw-1' }), true);
      assert.equal(await accepted({ servers: server.url, user: 'alice', password: 'wrong' }), false);
      assert.equal(await accepted({ servers: server.url, nkeySeedFile: seedFile }), true);
      assert.equal(await accepted({ servers: server.url, nkeySeedFile: otherSeed }), false);
      assert.equal(await accepted({ servers: server.url }), false, 'anonymous');
      assert.equal(readSeedFile(seedFile), user.seed);
    } finally {
      await server.dispose();
    }
  });

  test('token', async () => {
    const server = await NatsServerProcess.start({ config: ({ port, storeDir }) => `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${storeDir}" }\nauthorization { token: "t0ken-abc" }\n` });
    try {
      assert.equal(await accepted({ servers: server.url, token: 't0ken-abc' }), true);
      assert.equal(await accepted({ servers: server.url, token: 'nope' }), false);
    } finally {
      await server.dispose();
    }
  });

  test('TLS with a client certificate: the CA and a certificate connect; without the certificate, or without the CA, not', async () => {
    const tls = makeCertificates(join(dir, 'tls'));
    const server = await NatsServerProcess.start({
      scheme: 'tls',
      config: ({ port, storeDir }) =>
        `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${storeDir}" }\ntls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}", ca_file: "${tls.ca}", verify: true }\n`,
    });
    try {
      assert.equal(await accepted({ servers: server.url, caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey }), true);
      assert.equal(await accepted({ servers: server.url, caFile: tls.ca }), false, 'no client certificate');
      assert.equal(await accepted({ servers: server.url, certFile: tls.clientCert, keyFile: tls.clientKey }), false, 'the server certificate is not trusted without the CA');
    } finally {
      await server.dispose();
    }
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makeCertificates(into: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  execFileSync('mkdir', ['-p', into]);
  const f = (name: string): string => join(into, name);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=flotilla-test-ca', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'));
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=flotilla-test-${name}`, '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server-key.pem'), clientCert: f('client.pem'), clientKey: f('client-key.pem') };
}

describe('deploy/nats/flotilla.conf', () => {
  const file = fileURLToPath(new URL('../../../deploy/nats/flotilla.conf', import.meta.url));
  const text = readFileSync(file, 'utf8');
  const body = text.split('\n').filter((l) => !l.startsWith('#')).join('\n').trimStart();
  const nkeys = [...body.matchAll(/nkey: (U[A-Z2-7]{55})/g)].map((m) => m[1]!);

  test('is what natsServerConfig() makes for two nodes, a router and an operator, with TLS and client certificates', () => {
    assert.equal(nkeys.length, 4);
    const expected = natsServerConfig({
      listen: '0.0.0.0:4222',
      storeDir: '/var/lib/nats',
      agents: [{ nodeId: 'node-1', nkey: nkeys[0]! }, { nodeId: 'node-2', nkey: nkeys[1]! }],
      routers: [{ nkey: nkeys[2]! }],
      operators: [{ nkey: nkeys[3]! }],
      tls: { certFile: '/etc/nats/tls/server.pem', keyFile: '/etc/nats/tls/server-key.pem', caFile: '/etc/nats/tls/ca.pem', verify: true },
    });
    assert.equal(body, expected);
  });

  test('nats-server accepts it (its TLS files replaced by real ones)', () => {
    const tls = makeCertificates(join(dir, 'deploy-tls'));
    const config = body
      .replace('/etc/nats/tls/server.pem', tls.serverCert)
      .replace('/etc/nats/tls/server-key.pem', tls.serverKey)
      .replace('/etc/nats/tls/ca.pem', tls.ca)
      .replace('/var/lib/nats', join(dir, 'deploy-js'));
    const path = join(dir, 'deploy.conf');
    writeFileSync(path, config);
    const r = spawnSync('nats-server', ['-c', path, '-t'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});
