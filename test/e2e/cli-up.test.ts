/**
 * `flotilla up` and the operator commands, as an operator uses them: real processes, a nats-server that
 * `up` starts itself, and Ctrl-C (SIGINT) leaving no process behind.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI_BIN } from '../harness/FlotillaProcess.js';
import { freePort } from '../harness/freePort.js';

const run = promisify(execFile);
let up: ChildProcess;
let upOut = '';
let dir: string;
let natsUrl: string;
let routerUrl: string;
let natsPort: number;

async function cli(args: string[], opts: { allowFail?: boolean } = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [CLI_BIN, ...args], { timeout: 60_000 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: unknown; signal?: unknown };
    if (!opts.allowFail) throw new Error(`flotilla ${args.join(' ')} failed (${String(e.code)}): ${e.stderr}`);
    // A run that ended without an exit code of its own (could not start, killed, timed out) is no answer.
    if (typeof e.code !== 'number') throw new Error(`flotilla ${args.join(' ')} did not run to an exit code (${String(e.code ?? e.signal)}): ${e.stderr}`);
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code };
  }
}

async function processesMatching(pattern: string): Promise<string[]> {
  const r = await run('ps', ['-eo', 'pid,args']).catch(() => ({ stdout: '' }));
  return r.stdout.split('\n').filter((l) => l.includes(pattern) && !l.includes('ps -eo'));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-up-'));
  natsPort = await freePort();
  natsUrl = `nats://127.0.0.1:${natsPort}`;
  const port = await freePort();
  routerUrl = `http://127.0.0.1:${port}/mcp`;
  up = spawn(process.execPath, [CLI_BIN, 'up', '--nats', natsUrl, '--port', String(port), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  up.stdout?.on('data', (d: Buffer) => { upOut += d.toString(); });
  up.stderr?.on('data', (d: Buffer) => { upOut += d.toString(); });
  const deadline = Date.now() + 60_000;
  while (!upOut.includes('Ctrl-C stops everything')) {
    if (up.exitCode !== null) throw new Error(`flotilla up exited early: ${upOut}`);
    if (Date.now() > deadline) throw new Error(`flotilla up not ready: ${upOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (up.exitCode === null) up.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

test('up prints what it started and where', () => {
  assert.match(upOut, new RegExp(`started nats-server at ${natsUrl.replace(/[.]/g, '\\.')}`));
  assert.match(upOut, /MCP endpoint http:\/\/127\.0\.0\.1:\d+\/mcp/);
  // The quick start runs open on loopback, and says so.
  assert.match(upOut, /auth\s+OPEN: no authentication \(loopback only/);
  assert.match(upOut, /dashboard/);
  for (const n of ['node-1', 'node-2', 'node-3']) assert.match(upOut, new RegExp(`${n}\\s+http://127\\.0\\.0\\.1:\\d+`));
  // The stateful example on two nodes, sticky by default; the other servers where they always were; the
  // npm filesystem server mounted by stdio on the first two, on the mesh's files directory.
  const files = join(dir, 'files').replace(/[.]/g, '\\.');
  assert.match(upOut, new RegExp(`node-1 .*servers: echo, slow, docs, stateful \\(sticky\\), files \\(stdio: @modelcontextprotocol/server-filesystem on ${files}\\) `));
  assert.match(upOut, new RegExp(`node-2 .*servers: echo, slow, failing, stateful \\(sticky\\), files \\(stdio: @modelcontextprotocol/server-filesystem on ${files}\\) `));
  assert.match(upOut, /node-3 .*servers: echo, slow, interactive, docs /);
});

test('nodes lists the three agents with health and servers', async () => {
  const { stdout } = await cli(['nodes', '--nats', natsUrl]);
  for (const n of ['node-1', 'node-2', 'node-3']) assert.match(stdout, new RegExp(`${n}\\s+passing`));
  assert.match(stdout, /echo\(\d+\)/);
  const json = JSON.parse((await cli(['nodes', '--nats', natsUrl, '--json'])).stdout) as Array<{
    record: { nodeId: string; servers: Array<{ name: string; affinity?: string }> };
    ping?: { inflight: number };
  }>;
  assert.equal(json.length, 3);
  assert.ok(json.every((n) => typeof n.ping?.inflight === 'number'), 'ping data is shown');
  const stateful = json.flatMap((n) => n.record.servers.filter((s) => s.name === 'stateful').map((s) => [n.record.nodeId, s.affinity]));
  assert.deepEqual(stateful.sort(), [['node-1', 'sticky'], ['node-2', 'sticky']]);
  assert.ok(json.every((n) => n.record.servers.filter((s) => s.name !== 'stateful').every((s) => s.affinity === 'none')));
});

test('tools lists the merged, namespaced tools', async () => {
  const { stdout } = await cli(['tools', '--router', routerUrl]);
  for (const t of ['echo_echo', 'slow_work', 'failing_fail', 'files_read_text_file', 'files_list_directory']) assert.match(stdout, new RegExp(`^${t}\\b`, 'm'));
});

test('the mounted third-party stdio server answers through the router, reading the mesh\'s files directory', async () => {
  const r = await cli(['call', 'files_read_text_file', '--router', routerUrl, '--arg', `path=${join(dir, 'files', 'hello.txt')}`]);
  assert.match(r.stdout, /served by @modelcontextprotocol\/server-filesystem/);
  const outside = await cli(['call', 'files_read_text_file', '--router', routerUrl, '--arg', `path=${join(dir, 'servers.json')}`], { allowFail: true });
  assert.equal(outside.code, 2, 'a path outside the allowed directory is the tool\'s own error');
  assert.match(outside.stdout, /outside allowed directories|Access denied/i);
});

test('call runs a tool and prints its result; a user error exits non-zero with the message', async () => {
  const ok = await cli(['call', 'echo_echo', '--router', routerUrl, '--arg', 'text=hello flotilla']);
  assert.match(ok.stdout, /hello flotilla/);
  // A tool error is the tool's answer: printed, exit code 2 (1 is for calls that got no answer, below).
  // `reason` is passed: the tool's advertised input schema lists it as required.
  const failed = await cli(['call', 'failing_fail', '--router', routerUrl, '--arg', 'reason=on purpose'], { allowFail: true });
  assert.equal(failed.code, 2, failed.stderr);
  assert.match(failed.stdout, /^fail: on purpose$/m);
  const unknown = await cli(['call', 'nope_nope', '--router', routerUrl], { allowFail: true });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /nope_nope/);
});

test('call shows progress for a tool that reports it, and Ctrl-C cancels cleanly', async () => {
  const child = spawn(process.execPath, [CLI_BIN, 'call', 'slow_work', '--router', routerUrl, '--arg', 'steps=200', '--arg', 'stepMs=100'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const deadline = Date.now() + 30_000;
  while (!/\d+\/200/.test(err)) {
    if (Date.now() > deadline) throw new Error(`no progress shown: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 130);
  assert.match(err, /cancelled/);
});

test('up says it generated the keys, and a drain without the operator key is refused', async () => {
  assert.match(upOut, new RegExp(`keys\\s+generated for this run in ${join(dir, 'keys').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const unsigned = await cli(['drain', 'node-2', '--nats', natsUrl, '--grace', '2000'], { allowFail: true });
  assert.equal(unsigned.code, 1);
  // Unsigned, or signed by the key of another local mesh (.flotilla/keys in this directory): both refused.
  assert.match(unsigned.stderr, /refused to drain: refused: (unsigned control request|signer \w+ is not a trusted operator key)/);
});

test('drain (signed with the operator key up made) takes a node out, and it deregisters', async () => {
  const { stdout } = await cli(['drain', 'node-2', '--nats', natsUrl, '--grace', '2000', '--operator-seed-file', join(dir, 'keys', 'operator.nk')]);
  assert.match(stdout, /node-2 draining/);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const nodes = JSON.parse((await cli(['nodes', '--nats', natsUrl, '--json'])).stdout) as Array<{ record: { nodeId: string } }>;
    if (!nodes.some((n) => n.record.nodeId === 'node-2')) break;
    if (Date.now() > deadline) throw new Error('node-2 still registered after drain');
    await new Promise((r) => setTimeout(r, 200));
  }
  const missing = await cli(['drain', 'no-such-node', '--nats', natsUrl], { allowFail: true });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /did not answer/);
});

test('Ctrl-C stops everything up started, leaving no process behind', async () => {
  assert.ok((await processesMatching(`:${natsPort}`)).length > 0, 'the mesh is running before Ctrl-C');
  assert.ok((await processesMatching(join(dir, 'files'))).length > 0, 'the mounted stdio server runs before Ctrl-C');
  up.kill('SIGINT');
  const code = await new Promise<number | null>((r) => (up.exitCode !== null ? r(up.exitCode) : up.once('exit', (c) => r(c))));
  assert.equal(code, 0);
  assert.match(upOut, /stopped\./);
  assert.deepEqual(await processesMatching(`:${natsPort}`), []);
  assert.deepEqual(await processesMatching(`-p ${natsPort}`), []);
  assert.deepEqual(await processesMatching(join(dir, 'files')), [], 'no mounted stdio process is left');
});
