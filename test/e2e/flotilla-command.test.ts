/**
 * The `flotilla` command as the README gives it: `npx flotilla …` in a built checkout, and `flotilla` on
 * PATH after `npm install -g --prefix <dir> <checkout>` (the documented way to put it on a node's PATH),
 * run from a directory outside the checkout. Offline: npm is told never to reach a registry, so a
 * `flotilla` it would otherwise fetch from one fails the test instead of running.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = '0.1.0';

/**
 * An operator's shell: this process's environment without the `npm_*` variables that `npm test` (or
 * `npm exec`) sets, which would otherwise configure the npm and npx run here (`npm_config_call`, ...).
 */
const shell: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

let prefix: string;
let elsewhere: string;
/** That shell with the prefix's bin directory first on PATH. */
let onPath: NodeJS.ProcessEnv;

before(async () => {
  prefix = await mkdtemp(join(tmpdir(), 'flotilla-prefix-'));
  elsewhere = await mkdtemp(join(tmpdir(), 'flotilla-elsewhere-'));
  onPath = { ...shell, PATH: `${join(prefix, 'bin')}${delimiter}${process.env.PATH ?? ''}` };
});

after(async () => {
  await rm(prefix, { recursive: true, force: true });
  await rm(elsewhere, { recursive: true, force: true });
});

describe('the flotilla command', () => {
  test('npx flotilla runs the checkout’s built CLI, without a registry', async () => {
    const r = await run('npx', ['--offline', '--yes', 'flotilla', '--version'], { cwd: ROOT, env: shell, timeout: 30_000 });
    assert.equal(r.stdout.trim(), VERSION);
  });

  test('npm install -g --prefix <dir> <checkout> puts flotilla on PATH, usable from any directory', async () => {
    await run('npm', ['install', '-g', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', prefix, ROOT], { cwd: elsewhere, env: shell, timeout: 45_000 });
    // A link into the checkout, so `git pull && npm run build` updates the command too.
    assert.equal(await readlink(join(prefix, 'bin', 'flotilla')), join('..', 'lib', 'node_modules', 'flotilla', 'bin', 'flotilla.js'));

    const version = await run('flotilla', ['--version'], { cwd: elsewhere, env: onPath, timeout: 30_000 });
    assert.equal(version.stdout.trim(), VERSION);
    const help = await run('flotilla', ['agent', '--help'], { cwd: elsewhere, env: onPath, timeout: 30_000 });
    assert.match(help.stdout, /servers\.json/, 'flotilla agent --help names servers.json');

    // A servers.json in that other directory, found relative to it, read and printed (no NATS needed).
    const config = join(elsewhere, 'servers.json');
    await writeFile(config, JSON.stringify({ mcpServers: { memory: { command: 'mcp-server-memory' } }, maxSessions: 7 }));
    const printed = await run('flotilla', ['agent', '--config', 'servers.json', '--print-config'], { cwd: elsewhere, env: onPath, timeout: 30_000 });
    const out = JSON.parse(printed.stdout) as { configFile: string; options: Record<string, { value?: unknown; source: string }>; servers: Record<string, unknown> };
    assert.equal(out.configFile, config);
    assert.deepEqual(out.options.maxSessions, { value: 7, source: 'file' });
    assert.deepEqual(out.servers, { memory: { command: 'mcp-server-memory' } });
  });
});
