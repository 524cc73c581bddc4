/**
 * The mesh token the router sends a node names the node, the server, the tool of a `tools/call`, and the
 * client identity the session speaks for (issue 11: "short-lived signed tokens with the identity and tool
 * passed along"), as the agent's verifier reads it. Real keys and tokens (jose, NKeys), no stand-ins.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshTokenIssuer, MeshTokenVerifier, generateKey, keyFromSeed } from '@flotilla/trust';
import { MeshTokenCredentials } from '../src/security/MeshTokenCredentials.js';

const routerKey = generateKey('router');
const key = keyFromSeed(routerKey.seed);
const origin = 'http://127.0.0.1:7000';
const verifier = new MeshTokenVerifier({ keys: () => new Set([routerKey.publicKey]), audience: () => origin });
const credentials = new MeshTokenCredentials(new MeshTokenIssuer({ key: () => key }));

async function claimsOf(headers: Record<string, string>): Promise<{ sub?: string; srv?: string; tool?: string }> {
  const token = (headers.authorization ?? '').replace(/^Bearer /, '');
  const verdict = await verifier.check(token);
  assert.ok(verdict.ok, JSON.stringify(verdict));
  return verdict.claims as { sub?: string; srv?: string; tool?: string };
}

describe('mesh credentials', () => {
  it("carry the calling client's identity and tool to the node, each identity its own token", async () => {
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } };
    const alice = await claimsOf(await credentials.headers({ origin, path: '/mcp/echo', message: call, identity: 'jwt:https://issuer#alice' }));
    assert.deepEqual({ sub: alice.sub, srv: alice.srv, tool: alice.tool }, { sub: 'jwt:https://issuer#alice', srv: 'echo', tool: 'echo' });
    const bot = await claimsOf(await credentials.headers({ origin, path: '/mcp/echo', message: call, identity: 'key:0123456789abcdef' }));
    assert.equal(bot.sub, 'key:0123456789abcdef', 'a cached token of another identity is never reused');
  });

  it('say "router" when the router runs open and knows no identity', async () => {
    const claims = await claimsOf(await credentials.headers({ origin, path: '/mcp/echo', message: { jsonrpc: '2.0', id: 2, method: 'tools/list' } }));
    assert.equal(claims.sub, 'router');
    assert.equal(claims.tool, undefined);
  });

  it('name the router replica that sent the request when the issuer is given one', async () => {
    const named = new MeshTokenCredentials(new MeshTokenIssuer({ key: () => key, replica: 'a1b2c3d4' }));
    const claims = (await claimsOf(await named.headers({ origin, path: '/mcp/echo', message: { jsonrpc: '2.0', id: 3, method: 'tools/list' } }))) as { rep?: string };
    assert.equal(claims.rep, 'a1b2c3d4');
  });
});
