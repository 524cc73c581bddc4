/**
 * What the control plane's signatures and the mesh credential cost, per operation, on this machine:
 * signing and verifying a load report (ed25519 through Node's crypto), the same verify through the NKeys
 * library's own (pure JavaScript) ed25519, a record check (first and remembered), and mesh tokens
 * (issue, cached issue, first verify, remembered verify). `npm run bench:trust`.
 */
import { fromPublic } from '@nats-io/nkeys';
import { PROTOCOL_VERSION, canonicalJson, encodeJson, type NodeRecord } from '@flotilla/protocol';
import {
  MeshTokenIssuer,
  MeshTokenVerifier,
  NodeRecordTrust,
  SignatureVerifier,
  Signer,
  generateKey,
  issueNodeCredential,
  keyFromSeed,
  signRecord,
} from '../src/index.js';

async function time(label: string, n: number, fn: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const us = Number(process.hrtime.bigint() - start) / 1000 / n;
  process.stdout.write(`${label.padEnd(58)} ${us.toFixed(1).padStart(8)} µs\n`);
}

const node = generateKey('node');
const signer = new Signer(node.seed);
const subject = 'flotilla.v1.load.node-1';
const report = encodeJson({ v: PROTOCOL_VERSION, nodeId: 'node-1', seq: 1, at: Date.now(), inflight: 3, queued: 0, capacity: 16, eventLoopLagMs: 1.2, draining: false, tasks: 0, tools: { 'echo/echo': { ewmaMs: 1.2, completed: 100 }, 'slow/work': { ewmaMs: 800, completed: 12 } } });
const sig = signer.sign(subject, report);
const verifier = new SignatureVerifier();
await time('load report: sign (agent)', 5000, () => signer.sign(subject, report));
await time('load report: verify (router, Node crypto)', 5000, () => verifier.verify(node.publicKey, subject, report, sig));
const nk = fromPublic(node.publicKey);
const input = new Uint8Array([...new TextEncoder().encode(`${subject}\n`), ...report]);
await time('load report: verify with the NKeys library (tweetnacl)', 50, () => nk.verify(input, Buffer.from(sig, 'base64url')));

const issuer = generateKey('issuer');
const record: NodeRecord = { v: PROTOCOL_VERSION, nodeId: 'node-1', instanceId: 'i', mcpBaseUrl: 'http://127.0.0.1:7000', servers: [{ name: 'echo', path: '/mcp/echo', toolDigest: 'sha256:x', toolCount: 2 }], version: '0.1.0', capacity: 16, startedAt: 1, draining: false, nodeKey: node.publicKey, credential: issueNodeCredential(issuer.seed, { nodeId: 'node-1', nodeKey: node.publicKey }) };
const proof = { signed: canonicalJson(record), sig: signRecord(signer, record) };
await time('record: check, first time (credential + signature)', 2000, () => new NodeRecordTrust({ policy: { issuers: () => new Set([issuer.publicKey]), allowUnsigned: false }, verifier }).check(record, proof));
const trust = new NodeRecordTrust({ policy: { issuers: () => new Set([issuer.publicKey]), allowUnsigned: false }, verifier });
await time('record: check, remembered (every heartbeat)', 20000, () => trust.check(record, proof));

const mesh = generateKey('router');
const key = keyFromSeed(mesh.seed);
const origin = 'http://127.0.0.1:7000';
await time('mesh token: issue (new target)', 2000, (i) => new MeshTokenIssuer({ key: () => key }).token({ origin, server: 'echo', tool: `t${i}` }));
const tokens = new MeshTokenIssuer({ key: () => key });
await time('mesh token: issue, cached (per call)', 20000, () => tokens.token({ origin, server: 'echo', tool: 'echo' }));
const token = await tokens.token({ origin, server: 'echo', tool: 'echo' });
const keys = new Set([mesh.publicKey]);
await time('mesh token: verify, first time (agent)', 2000, () => new MeshTokenVerifier({ keys: () => keys, audience: () => origin }).check(token));
const agentSide = new MeshTokenVerifier({ keys: () => keys, audience: () => origin });
await time('mesh token: verify, remembered (per call)', 20000, () => agentSide.check(token));
