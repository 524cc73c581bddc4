/**
 * The standard `mcpServers` shape turned into server specs (what `flotilla agent --config` reads), the
 * environment references in it, the defaults of a mount, and the restart backoff: pure functions, fed
 * the inputs an operator writes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expandEnv, isPureReference, resolveServerSpecs, serverSpecsFromMcpServers } from '../src/index.js';
import { RestartBackoff } from '../src/mounts/stdio/RestartBackoff.js';

const ENV = { TOKEN: 's3cret', HOME: '/home/op' };

describe('mcpServers entries', () => {
  test('the shapes desktop clients and FastMCP write become stdio, remote and module specs', () => {
    const r = serverSpecsFromMcpServers(
      {
        filesystem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '${HOME}/data'], env: { DEBUG: '1' } },
        search: { url: 'https://search.example/mcp', headers: { Authorization: 'Bearer ${env:TOKEN}' }, description: 'other clients put keys like this' },
        legacy: { url: 'https://old.example/sse' },
        typed: { type: 'http', url: 'https://typed.example/api', flotilla: { bearerTokenEnv: 'TOKEN', timeoutMs: 2000 } },
        echo: { module: '@flotilla/examples/echo', flotilla: { affinity: 'sticky' } },
        off: { command: 'never-started', disabled: true },
      },
      ENV,
    );
    assert.ok(r.ok, JSON.stringify(r));
    const specs = resolveServerSpecs(r.specs);
    assert.deepEqual(
      specs.map((s) => [s.name, s.kind]),
      [['filesystem', 'stdio'], ['search', 'remote'], ['legacy', 'remote'], ['typed', 'remote'], ['echo', 'module']],
    );
    const [fs, search, legacy, typed, echo] = specs;
    assert.deepEqual(fs, {
      kind: 'stdio',
      name: 'filesystem',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-filesystem', '/home/op/data'],
      env: { DEBUG: '1' },
      cwd: undefined,
      sessions: 'shared',
      pool: { warm: 2, max: 16 },
      startupTimeoutMs: 30_000,
      restart: { initialDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 10_000 },
      affinity: 'none',
    });
    assert.deepEqual(search, { kind: 'remote', name: 'search', url: 'https://search.example/mcp', transport: 'streamable-http', headers: { Authorization: 'Bearer s3cret' }, timeoutMs: 10_000, affinity: 'none' });
    assert.equal(legacy?.kind === 'remote' && legacy.transport, 'sse', '/sse at the end of the path means the legacy transport');
    assert.deepEqual(typed?.kind === 'remote' && [typed.transport, typed.headers, typed.timeoutMs], ['streamable-http', { Authorization: 'Bearer s3cret' }, 2000]);
    assert.deepEqual(echo, { kind: 'module', name: 'echo', module: '@flotilla/examples/echo', affinity: 'sticky' });
  });

  test('every problem is reported with the path of its field, and never with a secret value', () => {
    const r = serverSpecsFromMcpServers(
      {
        under_score: { command: 'x' },
        nothing: {},
        both: { command: 'x', url: 'http://x' },
        badArgs: { command: 'x', args: ['ok', 1] },
        unset: { url: 'https://x.example/mcp', headers: { Authorization: 'Bearer ${NOT_SET_ANYWHERE}' } },
        token: { url: 'https://x.example/mcp', headers: { authorization: 'Bearer s3cret' }, flotilla: { bearerTokenEnv: 'TOKEN' } },
        pool: { command: 'x', flotilla: { sessions: 'per-session', pool: { warm: 9, max: 2 } } },
        wrongKind: { url: 'https://x.example/mcp', flotilla: { sessions: 'per-session' } },
        typo: { command: 'x', flotilla: { sesions: 'shared' } },
        transport: { url: 'https://x.example/mcp', transport: 'websocket' },
        stdioUrl: { url: 'https://x.example/mcp', type: 'stdio' },
        ftp: { url: 'ftp://x.example/' },
      },
      ENV,
    );
    assert.equal(r.ok, false);
    const issues = r.ok ? [] : r.issues;
    assert.deepEqual(issues.map((i) => i.path), [
      'mcpServers.under_score',
      'mcpServers.nothing',
      'mcpServers.both',
      'mcpServers.badArgs.args[1]',
      'mcpServers.unset.headers.Authorization',
      'mcpServers.token.flotilla.bearerTokenEnv',
      'mcpServers.pool.flotilla.pool.warm',
      'mcpServers.wrongKind.flotilla.sessions',
      'mcpServers.typo.flotilla',
      'mcpServers.transport.transport',
      'mcpServers.stdioUrl.type',
      'mcpServers.ftp.url',
    ]);
    const text = JSON.stringify(issues);
    assert.match(text, /environment variable NOT_SET_ANYWHERE is not set/);
    assert.match(text, /pool.warm must not be larger than pool.max/);
    assert.match(text, /applies to stdio servers, not to this remote server/);
    assert.match(text, /unknown transport \\"websocket\\"/);
    assert.ok(!text.includes('s3cret'), 'no secret in the messages');
    assert.deepEqual(serverSpecsFromMcpServers([1], ENV), { ok: false, issues: [{ path: 'mcpServers', message: 'Invalid input: expected record, received array' }] });
  });

  test('server names are unique and specs are checked when given in code too', () => {
    assert.throws(() => resolveServerSpecs([{ name: 'a', command: 'x' }, { name: 'a', url: 'http://x' }]), /servers\[1\]\.name: server name "a" is used twice/);
    assert.throws(() => resolveServerSpecs([{ name: 'a', command: '' }]), /servers\[0\]\.command: command must not be empty/);
  });
});

describe('environment references', () => {
  test('${NAME} and ${env:NAME} expand; unset names are errors; $${ stays literal', () => {
    assert.deepEqual(expandEnv('Bearer ${TOKEN} at ${env:HOME}', ENV), { ok: true, value: 'Bearer s3cret at /home/op', usedEnv: true });
    assert.deepEqual(expandEnv('${A}${B}${A}', {}), { ok: false, missing: ['A', 'B'] });
    assert.deepEqual(expandEnv('cost: $${TOKEN}', ENV), { ok: true, value: 'cost: ${TOKEN}', usedEnv: false });
    assert.equal(isPureReference('${TOKEN}'), true);
    assert.equal(isPureReference('Bearer ${TOKEN}'), false);
  });
});

describe('restart backoff', () => {
  test('doubles per failure up to the cap, and a stable run resets it', () => {
    const b = new RestartBackoff({ initialDelayMs: 500, maxDelayMs: 4000, stableAfterMs: 10_000 });
    assert.deepEqual([0, 0, 0, 0, 0].map(() => b.next(0)), [500, 1000, 2000, 4000, 4000]);
    assert.equal(b.consecutiveFailures, 5);
    assert.equal(b.next(9_999), 4000, 'a short run is still a failure');
    assert.equal(b.next(10_000), 500, 'a run of stableAfterMs resets the delay');
    assert.equal(b.consecutiveFailures, 1);
  });
});
