/**
 * Benchmark: the per-call cost of the front door. One agent hosting echo, and two routers on it in one
 * run: one open (loopback, no auth) and one with auth on (a local JWT issuer serving its JWKS over HTTP,
 * API keys and an access policy). Sequential `echo` calls through each, interleaved in halves so machine
 * noise hits all alike: open, with a bearer JWT, with an API key. Also measures the JWT check alone (a
 * cached token, and a full signature check).
 * Usage: npm run bench:auth [-- --calls 2000]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { JwtVerifier, createApiKey } from '../../packages/router/src/index.js';
import { LocalJwtIssuer } from '../../packages/router/test/fixtures/LocalJwtIssuer.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { ms, summarize } from './stats.js';
import { printTable } from './table.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '2000' }, warmup: { type: 'string', default: '200' } } });
const calls = Number(values.calls);
const warmup = Number(values.warmup);
const AUDIENCE = 'http://flotilla.bench/mcp';

async function series(url: string, credential: string | undefined, n: number): Promise<number[]> {
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), credential ? { requestInit: { headers: { authorization: `Bearer ${credential}` } } } : {}));
  try {
    for (let i = 0; i < warmup; i++) await client.callTool({ name: 'echo_echo', arguments: { text: 'warm' } });
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await client.callTool({ name: 'echo_echo', arguments: { text: `m${i}` } });
      out.push(performance.now() - t0);
      if (r.isError) throw new Error(`call ${i} failed: ${JSON.stringify(r.content)}`);
    }
    return out;
  } finally {
    await client.close();
  }
}

async function waitForEcho(url: string, credential?: string): Promise<void> {
  const probe = new Client({ name: 'probe', version: '0' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(url), credential ? { requestInit: { headers: { authorization: `Bearer ${credential}` } } } : {}));
  for (let i = 0; ; i++) {
    if ((await probe.listTools()).tools.some((t) => t.name === 'echo_echo')) break;
    if (i > 200) throw new Error('router never listed echo_echo');
    await new Promise((r) => setTimeout(r, 100));
  }
  await probe.close();
}

const nats = await NatsServerProcess.start();
const issuer = await LocalJwtIssuer.start();
const dir = await mkdtemp(join(tmpdir(), 'flotilla-bench-auth-'));
const key = createApiKey({ subject: 'bench-bot', roles: ['bench'] });
await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: [key.entry] }));
await writeFile(join(dir, 'policy.json'), JSON.stringify({ rules: [{ name: 'bench', match: { roles: ['bench'] }, allow: { servers: ['echo'] } }] }));
const agent = FlotillaProcess.spawn('agent', ['agent', '--node-id', 'bench-1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0']);
const open = FlotillaProcess.spawn('open-router', ['router', '--nats', nats.url, '--port', '0']);
const secured = FlotillaProcess.spawn('auth-router', [
  'router', '--nats', nats.url, '--port', '0',
  '--auth-issuer', issuer.issuer, '--auth-audience', AUDIENCE, '--auth-jwks-url', issuer.jwksUrl,
  '--api-keys-file', join(dir, 'keys.json'), '--policy-file', join(dir, 'policy.json'),
]);

try {
  const token = await issuer.token({ sub: 'bench-user', aud: AUDIENCE, roles: ['bench'], expiresIn: 3600 });
  await agent.ready(60_000);
  const openUrl = String((await open.ready(60_000)).url);
  const authUrl = String((await secured.ready(60_000)).url);
  await waitForEcho(openUrl);
  await waitForEcho(authUrl, key.key);

  const series_ = { open: [] as number[], jwt: [] as number[], key: [] as number[] };
  const half = Math.floor(calls / 2);
  for (const round of [0, 1]) {
    const n = round === 0 ? half : calls - half;
    series_.open.push(...(await series(openUrl, undefined, n)));
    series_.jwt.push(...(await series(authUrl, token, n)));
    series_.key.push(...(await series(authUrl, key.key, n)));
  }
  const o = summarize(series_.open);
  const j = summarize(series_.jwt);
  const k = summarize(series_.key);

  // The JWT check alone, in this process.
  const verifier = new JwtVerifier({ issuer: issuer.issuer, audience: [AUDIENCE], jwksUrl: issuer.jwksUrl });
  await verifier.verify(token);
  const n = 100_000;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) verifier.cached(token);
  const cachedUs = ((performance.now() - t0) / n) * 1000;
  const m = 1000;
  t0 = performance.now();
  for (let i = 0; i < m; i++) await verifier.verifyUncached(token);
  const fullUs = ((performance.now() - t0) / m) * 1000;

  printTable(`Sequential echo latency through the router, ${calls} calls each (after ${warmup} warm-up calls)`, [
    ['series', 'calls', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
    ['open (no auth)', String(o.n), ms(o.p50), ms(o.p90), ms(o.p99), ms(o.mean)],
    ['auth on, bearer JWT', String(j.n), ms(j.p50), ms(j.p90), ms(j.p99), ms(j.mean)],
    ['auth on, API key', String(k.n), ms(k.p50), ms(k.p90), ms(k.p99), ms(k.mean)],
    ['overhead JWT - open', '', ms(j.p50 - o.p50), ms(j.p90 - o.p90), ms(j.p99 - o.p99), ms(j.mean - o.mean)],
    ['overhead API key - open', '', ms(k.p50 - o.p50), ms(k.p90 - o.p90), ms(k.p99 - o.p99), ms(k.mean - o.mean)],
  ]);
  process.stdout.write(`JWT check alone: cached token ${cachedUs.toFixed(2)} µs, full signature check (ES256, JWKS cached) ${fullUs.toFixed(1)} µs\n`);
  process.stdout.write(`${JSON.stringify({ open: o, jwt: j, apiKey: k, jwtCachedUs: cachedUs, jwtFullUs: fullUs })}\n`);
} finally {
  await Promise.all([open.stop(), secured.stop(), agent.stop()]);
  await issuer.stop();
  await nats.dispose();
  await rm(dir, { recursive: true, force: true });
}
