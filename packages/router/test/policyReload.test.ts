/**
 * The access policy file read again when it changes (`PolicyFile`), and the ops permission of the policy
 * (`AccessPolicy.allowsOps`): a good change takes effect, a broken or missing file keeps the policy last
 * read (reported once per change), and `deny.ops` wins over the `flotilla:ops` role.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@flotilla/telemetry';
import { AccessPolicy } from '../src/auth/AccessPolicy.js';
import type { Identity } from '../src/auth/Identity.js';
import { PolicyFile, type PolicyReloadResult } from '../src/auth/PolicyFile.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const ci: Identity = { kind: 'api-key', subject: 'ci-bot', keyId: 'abcdefgh', scopes: [], roles: ['ci'], principal: 'key:abcdefgh' };
const operator: Identity = { ...ci, subject: 'alice', roles: ['flotilla:ops'], principal: 'key:alice000' };
const scoped: Identity = { ...ci, subject: 'dash', roles: [], scopes: ['flotilla:ops'], principal: 'key:dash0000' };

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-policy-reload-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function replace(path: string, text: string): Promise<void> {
  await writeFile(`${path}.next`, text);
  await rename(`${path}.next`, path);
}

const allowCi = (tools: string[]): string => JSON.stringify({ rules: [{ name: 'ci', match: { roles: ['ci'] }, allow: { tools } }] });

describe('policy file reload', () => {
  it('takes a changed file, keeps the last good policy when it breaks or disappears, and reports each change once', async () => {
    const path = join(dir, 'policy.json');
    await writeFile(path, allowCi([]));
    const results: PolicyReloadResult[] = [];
    let changes = 0;
    const file = await PolicyFile.load({ path, logger, reloadEveryMs: 60_000, onReload: (r) => results.push(r), onChange: () => changes++ });
    try {
      let now = Date.now();
      const current = async (): Promise<AccessPolicy> => file.current((now += 60_000));
      assert.equal((await current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), false);

      await replace(path, allowCi(['echo_*']));
      assert.equal((await current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), true);
      assert.deepEqual(results, ['ok']);
      assert.equal(changes, 1);

      await replace(path, JSON.stringify({ rules: [{ name: 5 }] }));
      assert.equal((await current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), true, 'the last good policy stays');
      assert.equal((await current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), true);
      assert.deepEqual(results, ['ok', 'invalid'], 'reported once per change');

      await replace(path, '{ not json');
      await current();
      assert.deepEqual(results, ['ok', 'invalid', 'invalid']);

      await rm(path);
      assert.equal((await current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), true, 'a missing file keeps the policy too');
      await current();
      assert.deepEqual(results, ['ok', 'invalid', 'invalid', 'invalid']);

      await writeFile(path, allowCi([]));
      assert.equal((await current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), false, 'the file back: in force again');
      assert.equal(changes, 2);
    } finally {
      file.stop();
    }
  });

  it('reads a file replaced within one tick of the file clock (same mtime) again', async () => {
    const path = join(dir, 'same-tick.json');
    // What two saves a few ms apart look like: the kernel's coarse clock gives both files one mtime.
    const tick = 1_800_000_000;
    await writeFile(path, allowCi([]));
    await utimes(path, tick, tick);
    const file = await PolicyFile.load({ path, logger, reloadEveryMs: 60_000 });
    try {
      const before = await stat(path);
      await replace(path, allowCi(['echo_*']));
      await utimes(path, tick, tick);
      assert.equal((await stat(path)).mtimeMs, before.mtimeMs);
      assert.equal((await file.current(Date.now() + 60_000)).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), true);
    } finally {
      file.stop();
    }
  });

  it('does not read the file again before reloadEveryMs has passed', async () => {
    const path = join(dir, 'quiet.json');
    await writeFile(path, allowCi([]));
    const file = await PolicyFile.load({ path, logger, reloadEveryMs: 60_000 });
    try {
      await replace(path, allowCi(['echo_*']));
      assert.equal((await file.current()).grantsFor(ci).allows('tool', 'echo', 'echo_echo'), false);
    } finally {
      file.stop();
    }
  });

  it('a bad file at start is an error naming the field', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ rules: [{ name: 'x', allow: { ops: 'yes' } }] }));
    await assert.rejects(PolicyFile.load({ path, logger }), /rules\.0\.allow\.ops/);
  });
});

describe('the ops permission', () => {
  it('comes from the flotilla:ops role or scope, or a rule allowing ops; deny.ops wins', () => {
    const policy = AccessPolicy.fromDocument({
      default: 'allow',
      rules: [
        { name: 'watchers', match: { subjects: ['watch*'] }, allow: { ops: true } },
        { name: 'no-ops', match: { subjects: ['alice'] }, deny: { ops: true } },
      ],
    });
    assert.equal(policy.allowsOps(ci), false, '"default": "allow" does not grant ops');
    assert.equal(policy.allowsOps({ ...ci, subject: 'watcher' }), true);
    assert.equal(policy.allowsOps(scoped), true);
    assert.equal(policy.allowsOps(operator), false, 'deny.ops takes the role away');
    assert.equal(policy.allowsOps({ ...operator, subject: 'bob' }), true);
  });
});
