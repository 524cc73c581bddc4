/**
 * Remote mounts: the example HTTP server that wants a bearer token, mounted by URL on two agents (the
 * token from the agents' environment, through `${VAR}` in headers or `flotilla.bearerTokenEnv`), over
 * Streamable HTTP and the legacy SSE transport, called through a real router. The remote goes down and
 * comes back; a mount with the wrong token is refused by the remote; the token never shows in a log.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from '../harness/eventually.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { CLI_BIN } from '../harness/FlotillaProcess.js';
import { BearerServerProcess, grpcStatus, writeAgentConfig } from '../harness/mounts.js';

const run = promisify(execFile);
const TOKEN = `tok-${randomUUID()}`;
const ENV = { DEMO_TOKEN: TOKEN };

let mesh: FlotillaMesh;
let dir: string;
let remoteA: BearerServerProcess;
let remoteB: BearerServerProcess;
let configA: string;
const grpc: Record<string, string> = {};

interface Whoami {
  instance: string;
  transport: string;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-remote-'));
  [remoteA, remoteB] = await Promise.all([BearerServerProcess.start(TOKEN), BearerServerProcess.start(TOKEN)]);
  configA = await writeAgentConfig(join(dir, 'a.json'), {
    remote: { url: `${remoteA.url}/mcp`, headers: { Authorization: 'Bearer ${DEMO_TOKEN}' } },
    legacy: { url: `${remoteA.url}/sse`, flotilla: { bearerTokenEnv: 'DEMO_TOKEN' } },
    denied: { url: `${remoteA.url}/mcp`, headers: { Authorization: 'Bearer not-the-token' } },
  });
  const configB = await writeAgentConfig(join(dir, 'b.json'), { remote: { url: `${remoteB.url}/mcp`, type: 'http', flotilla: { bearerTokenEnv: 'DEMO_TOKEN' } } });
  mesh = await FlotillaMesh.start();
  await mesh.startRouter();
  for (const [id, file] of [['ra', configA], ['rb', configB]] as const) grpc[id] = String((await (await mesh.startAgent(id, ['--config', file], [], ENV)).ready()).grpc);
  await mesh.waitForCatalog({ remote_whoami: ['ra', 'rb'], legacy_whoami: ['ra'] });
});

after(async () => {
  await mesh?.stop();
  await Promise.all([remoteA?.kill(), remoteB?.kill()]);
  await rm(dir, { recursive: true, force: true });
});

describe('a remote server behind a bearer token, mounted by URL', () => {
  test('is called through the router over Streamable HTTP and over the legacy SSE transport', async () => {
    const client = await mesh.connectClient('remote');
    const sum = await client.client.callTool({ name: 'remote_add', arguments: { a: 2, b: 3 } });
    assert.deepEqual(sum.structuredContent, { sum: 5 });
    const legacy = (await client.client.callTool({ name: 'legacy_whoami' })).structuredContent as unknown as Whoami;
    assert.equal(legacy.transport, 'sse');
    const modern = (await client.client.callTool({ name: 'remote_whoami' })).structuredContent as unknown as Whoami;
    assert.equal(modern.transport, 'streamable-http');
  });

  test('with the wrong token it is NOT_SERVING, says why (HTTP 401), and its tools are not offered', async () => {
    assert.equal(await grpcStatus(grpc.ra!, 'denied'), 'NOT_SERVING');
    assert.equal(await grpcStatus(grpc.ra!, ''), 'SERVING', 'one broken mount does not make the node unhealthy');
    const warned = mesh.agent('ra').lines.find((l) => l.server === 'denied' && l.msg === 'mounted server does not answer yet: NOT_SERVING until it does');
    assert.match(String(warned?.reason), /HTTP 401.*refused the credentials/);
    const client = await mesh.connectClient('denied');
    const names = (await client.client.listTools()).tools.map((t) => t.name);
    assert.ok(!names.some((n) => n.startsWith('denied_')), `no denied_ tools (got ${names.join(', ')})`);
  });

  test('the token is in no log line, and --print-config shows only the variable it comes from', async () => {
    const everything = JSON.stringify([...mesh.agent('ra').lines, ...mesh.agent('rb').lines]) + mesh.agent('ra').stderr.join('') + mesh.agent('rb').stderr.join('');
    assert.ok(everything.includes('remote'), 'the logs are there');
    assert.ok(!everything.includes(TOKEN), 'the token was logged');
    const printed = await run(process.execPath, [CLI_BIN, 'agent', '--config', configA, '--print-config'], { env: { ...process.env, ...ENV } });
    assert.ok(!printed.stdout.includes(TOKEN), 'the token was printed');
    const servers = (JSON.parse(printed.stdout) as { servers: Record<string, { headers?: Record<string, string>; flotilla?: { bearerTokenEnv?: string } }> }).servers;
    assert.equal(servers.remote?.headers?.Authorization, '<redacted>', 'a header with more than a reference is redacted');
    assert.equal(servers.legacy?.flotilla?.bearerTokenEnv, 'DEMO_TOKEN');
  });

  test('a remote that goes down is NOT_SERVING and its calls go to the other node; back up, it serves again', async () => {
    const client = await mesh.connectClient('failover');
    // Calls go out together: sent one by one, the balancer rightly sends all of them to whichever remote
    // measured faster (on a loaded machine one often does by more than its tie margin).
    const instances = async (n: number): Promise<Set<string>> => {
      const answers = await Promise.all(Array.from({ length: n }, () => client.client.callTool({ name: 'remote_whoami' })));
      return new Set(answers.map((a) => (a.structuredContent as unknown as Whoami).instance));
    };
    await eventually(async () => assert.equal((await instances(12)).size, 2, 'calls are spread over both remotes while both are up'), 30_000);
    const port = remoteA.port;
    await remoteA.kill();
    await eventually(async () => assert.equal(await grpcStatus(grpc.ra!, 'remote'), 'NOT_SERVING'), 20_000);
    await mesh.waitForReplicas('remote_whoami', ['rb']);
    const whileDown = await instances(6);
    assert.equal(whileDown.size, 1, 'only the remote that is up answers');
    remoteA = await BearerServerProcess.start(TOKEN, port);
    await eventually(async () => assert.equal(await grpcStatus(grpc.ra!, 'remote'), 'SERVING'), 20_000);
    await mesh.waitForReplicas('remote_whoami', ['ra', 'rb']);
    await eventually(async () => assert.equal((await instances(12)).size, 2, 'both remotes answer again'), 30_000);
    const lines = mesh.agent('ra').lines.filter((l) => l.server === 'remote' && (l.msg === 'server stopped answering' || l.msg === 'server answers again'));
    assert.deepEqual(lines.map((l) => l.msg), ['server stopped answering', 'server answers again']);
  });
});
