/**
 * `flotilla router --config <file>`: every flag's option may come from a YAML or JSON file, the front door's
 * included; flags win over FLOTILLA_ROUTER_* variables, which win over the file (`--print-config` says
 * where each value came from); a file with errors names every wrong field and starts nothing; a router
 * started from a file serves with what the file says.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';

const run = promisify(execFile);
type Printed = { configFile: string; options: Record<string, { value: unknown; source: string }> };

let dir: string;
let nats: NatsServerProcess;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-router-config-'));
  nats = await NatsServerProcess.start();
});
after(async () => {
  await nats?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function printConfig(file: string, flags: string[] = [], env: Record<string, string> = {}): Promise<Printed> {
  const { stdout } = await run(process.execPath, [CLI_BIN, 'router', '--config', file, '--print-config', ...flags], { env: { ...process.env, ...env } });
  return JSON.parse(stdout) as Printed;
}

describe('router config file', () => {
  test('options come from the file, the front door and limits included; env beats the file, flags beat env', async () => {
    const file = join(dir, 'router.yaml');
    await writeFile(file, ['strategy: round-robin', 'maxAttempts: 5', 'maxSessionsPerIdentity: 7', 'clientConcurrency: 4', 'policyFile: /etc/flotilla/policy.json', 'allowedHost: [mcp.example.com]'].join('\n'));
    const fromFile = await printConfig(file);
    assert.equal(fromFile.configFile, file);
    assert.deepEqual(fromFile.options.strategy, { value: 'round-robin', source: 'file' });
    assert.deepEqual(fromFile.options.maxSessionsPerIdentity, { value: 7, source: 'file' });
    assert.deepEqual(fromFile.options.clientConcurrency, { value: 4, source: 'file' });
    assert.deepEqual(fromFile.options.policyFile, { value: '/etc/flotilla/policy.json', source: 'file' });
    assert.deepEqual(fromFile.options.allowedHost, { value: ['mcp.example.com'], source: 'file' });
    assert.equal(fromFile.options.port!.source, 'default');

    const env = await printConfig(file, [], { FLOTILLA_ROUTER_STRATEGY: 'p2c-ewma', FLOTILLA_ROUTER_CLIENT_CONCURRENCY: '9' });
    assert.equal(env.options.strategy!.value, 'p2c-ewma');
    assert.equal(env.options.strategy!.source, 'env');
    assert.equal(env.options.clientConcurrency!.value, 9);
    const flags = await printConfig(file, ['--strategy', 'least-outstanding', '--client-concurrency', '2'], { FLOTILLA_ROUTER_STRATEGY: 'p2c-ewma' });
    assert.deepEqual(flags.options.strategy!.value, 'least-outstanding');
    assert.equal(flags.options.strategy!.source, 'flag');
    assert.equal(flags.options.clientConcurrency!.value, 2);
  });

  test('a file with errors names every wrong field and starts nothing', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ strategy: 'fastest', maxAttempts: 0, authIssuer: 'not a url', bogus: true }));
    const failed = await run(process.execPath, [CLI_BIN, 'router', '--config', file, '--nats', nats.url, '--port', '0']).then(
      () => assert.fail('the router started with a bad config file'),
      (err: { code: number; stderr: string; stdout: string }) => err,
    );
    assert.equal(failed.code, 1);
    const text = failed.stderr + failed.stdout;
    for (const field of ['strategy', 'maxAttempts', 'authIssuer', 'bogus']) assert.match(text, new RegExp(`${field}`), `names ${field}: ${text}`);
  });

  test('a router started from a file serves with what it says', async () => {
    const file = join(dir, 'serve.json');
    await writeFile(file, JSON.stringify({ nats: nats.url, port: 0, strategy: 'round-robin', maxClientSessions: 3 }));
    const router = FlotillaProcess.spawn('router', ['router', '--config', file]);
    try {
      const ready = await router.ready();
      assert.equal(ready.strategy, 'round-robin');
      const url = String(ready.url);
      const init = (): Promise<Response> =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '0' } } }),
        });
      for (let i = 0; i < 3; i++) assert.equal((await init()).status, 200);
      assert.equal((await init()).status, 503, 'maxClientSessions from the file caps sessions');
    } finally {
      await router.stop();
    }
  });
});
