/** The dashboard's sign-in cookie: sealed identity, bounded life, refused when forged, foreign or expired. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Identity } from '../src/auth/Identity.js';
import { cookieValue, OpsCookie } from '../src/auth/OpsCookie.js';
import { Sealer } from '../src/sessions/Sealer.js';

const identity: Identity = { kind: 'jwt', subject: 'alice', issuer: 'https://issuer', scopes: ['flotilla:ops'], roles: [], principal: 'jwt:https://issuer#alice' };

describe('ops cookie', () => {
  it('opens on any replica with the same key, with the identity it sealed', async () => {
    const key = Sealer.random();
    const { value, expiresAt } = await new OpsCookie(key, 60_000).issue(identity, 1_000);
    assert.equal(expiresAt, 61_000);
    const opened = await new OpsCookie(key, 60_000).open(value, 2_000);
    assert.deepEqual(opened, { ...identity, expiresAt: 61_000 });
  });

  it('lasts no longer than the credential it came from', async () => {
    const { expiresAt } = await new OpsCookie(Sealer.random(), 60_000).issue({ ...identity, expiresAt: 5_000 }, 1_000);
    assert.equal(expiresAt, 5_000);
  });

  it('is refused when expired, forged, sealed with another key, or another kind of sealed document', async () => {
    const key = Sealer.random();
    const cookie = new OpsCookie(key, 60_000);
    const { value } = await cookie.issue(identity, 1_000);
    assert.equal(await cookie.open(value, 61_000), undefined, 'expired');
    assert.equal(await cookie.open('forged', 2_000), undefined);
    assert.equal(await new OpsCookie(Sealer.random(), 60_000).open(value, 2_000), undefined, 'another key');
    assert.equal(await cookie.open(await key.seal('flotilla-session+jwe', { v: 1 }), 2_000), undefined, 'another typ');
    assert.equal(await cookie.open(await key.seal('flotilla-ops+jwe', { v: 1, exp: 99_000, identity: { kind: 'anonymous' } }), 2_000), undefined, 'wrong shape');
  });

  it('finds its value in a Cookie header', () => {
    assert.equal(cookieValue('a=1; flotilla_ops=xyz; b=2', 'flotilla_ops'), 'xyz');
    assert.equal(cookieValue('a=1', 'flotilla_ops'), undefined);
    assert.equal(cookieValue(undefined, 'flotilla_ops'), undefined);
  });
});
