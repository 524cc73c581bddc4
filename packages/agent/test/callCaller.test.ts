/** The caller of a call as the agent records it, from the verified mesh token's claims. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callerLogFields, callerOf, callerSpanAttributes, meshAuthInfo } from '../src/calls/CallCaller.js';

const claims = { iss: 'AROUTERKEY', aud: 'http://127.0.0.1:7000', srv: 'echo', tool: 'echo', sub: 'key:0123456789abcdef', rep: 'a1b2c3d4', iat: 1, exp: 61 };

describe('call caller', () => {
  it("names the token's client identity, the router's mesh key and the replica, on spans and log lines", () => {
    const caller = callerOf(meshAuthInfo(claims, 'tok'));
    assert.deepEqual(caller, { principal: 'key:0123456789abcdef', routerKey: 'AROUTERKEY', replica: 'a1b2c3d4' });
    assert.deepEqual(callerSpanAttributes(caller), { 'enduser.id': 'key:0123456789abcdef', 'flotilla.router.key': 'AROUTERKEY', 'flotilla.router.replica': 'a1b2c3d4' });
    assert.deepEqual(callerLogFields(caller), { principal: 'key:0123456789abcdef', routerKey: 'AROUTERKEY', router: 'a1b2c3d4' });
  });

  it('a token of an older router (no sub, no replica) names the router itself', () => {
    const { sub: _sub, rep: _rep, ...old } = claims;
    const caller = callerOf(meshAuthInfo(old, 'tok'));
    assert.deepEqual(caller, { principal: 'router', routerKey: 'AROUTERKEY' });
    assert.deepEqual(callerSpanAttributes(caller), { 'enduser.id': 'router', 'flotilla.router.key': 'AROUTERKEY' });
  });

  it('nothing without a mesh token, or with auth info the agent did not make', () => {
    assert.equal(callerOf(undefined), undefined);
    assert.equal(callerOf({ token: 't', clientId: 'c', scopes: [] }), undefined);
    assert.equal(callerOf({ token: 't', clientId: 'c', scopes: [], extra: { sub: 42 } }), undefined);
    assert.deepEqual(callerSpanAttributes(undefined), {});
    assert.deepEqual(callerLogFields(undefined), {});
  });
});
