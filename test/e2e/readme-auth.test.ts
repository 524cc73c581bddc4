/**
 * The README's "Authentication (the front door)" walk-through, step by step with real processes: a
 * nats-server and an agent (what `npm start` runs), `flotilla dev-issuer`, a router with JWT auth on, then
 * `flotilla tools` refused without a token and answering with one fetched from the issuer's /token
 * (FLOTILLA_TOKEN), as the README shows.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { freePort } from '../harness/freePort.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { until } from '../../packages/router/test/fixtures/mcpClient.js';

const run = promisify(execFile);
let nats: NatsServerProcess;
let agent: FlotillaProcess;
let issuerProcess: FlotillaProcess;
let router: FlotillaProcess;
let issuer: string;
let routerUrl: string;

before(async () => {
  nats = await NatsServerProcess.start();
  agent = FlotillaProcess.spawn('rd1', ['agent', '--node-id', 'rd1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--grpc-port', '0']);
  issuerProcess = FlotillaProcess.spawn('dev-issuer', ['dev-issuer', '--port', '0']);
  issuer = String((await issuerProcess.ready(60_000)).issuer);
  const port = await freePort();
  routerUrl = `http://127.0.0.1:${port}/mcp`;
  router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', String(port), '--auth-issuer', issuer, '--auth-jwks-url', `${issuer}/jwks.json`, '--auth-audience', routerUrl]);
  await Promise.all([router.ready(60_000), agent.ready(60_000)]);
});

after(async () => {
  await Promise.all([router, agent, issuerProcess].filter(Boolean).map((p) => p.stop()));
  await nats?.dispose();
});

const tools = (env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> =>
  run(process.execPath, [CLI_BIN, 'tools'], { env: { ...process.env, FLOTILLA_ROUTER_URL: routerUrl, ...env } });

describe('README: turning on JWT auth with a local issuer', () => {
  it('`flotilla tools` is refused without a token, and answers with one from the dev issuer', async () => {
    await assert.rejects(tools({ FLOTILLA_TOKEN: '' }), (err: { stderr: string }) => /401|Unauthorized/i.test(err.stderr));
    // curl -s -d sub=alice -d role=ops -d aud=<router> <issuer>/token
    const res = await fetch(`${issuer}/token`, { method: 'POST', body: new URLSearchParams({ sub: 'alice', role: 'ops', aud: routerUrl }) });
    assert.equal(res.status, 200);
    const token = await res.text();
    const out = await until('echo_echo listed with the token', async () => {
      const r = await tools({ FLOTILLA_TOKEN: token });
      return r.stdout.includes('echo_echo') ? r.stdout : undefined;
    }, 60_000);
    assert.match(out, /echo_echo/);
    assert.ok(router.lines.some((l) => l.principal === `jwt:${issuer}#alice` && l.msg === 'client session opened'));
  });
});
