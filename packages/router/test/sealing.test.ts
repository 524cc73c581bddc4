/**
 * Resume tickets sealed synchronously (AES-256-GCM through node:crypto, key from HKDF): they open on any
 * replica with the same session key and nowhere else, tampering is caught, one purpose's envelope never
 * opens as another's, and tickets sealed as JWE by replicas of the previous version still open.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { AeadEnvelope } from '../src/sessions/AeadEnvelope.js';
import { Sealer } from '../src/sessions/Sealer.js';
import { SessionTokens } from '../src/sessions/SessionTokens.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('resume tickets', () => {
  const sid = randomUUID();
  const ticket = { sid, requests: [{ id: 1, method: 'tools/call', rerun: true, params: { name: 'echo_echo', arguments: { text: 'hi' } } }] };

  it('open on another replica with the same session key, and on no replica with another key', async () => {
    const sealed = new SessionTokens(Sealer.fromBase64(KEY)).sealTicket(ticket);
    assert.match(sealed, /^[A-Za-z0-9_-]+$/, 'base64url, usable in an event id');
    assert.deepEqual(await new SessionTokens(Sealer.fromBase64(KEY)).openTicket(sealed), ticket);
    assert.equal(await new SessionTokens(Sealer.random()).openTicket(sealed), undefined);
  });

  it('are never the same twice, and any changed byte makes them unreadable', async () => {
    const tokens = new SessionTokens(Sealer.fromBase64(KEY));
    const a = tokens.sealTicket(ticket);
    assert.notEqual(a, tokens.sealTicket(ticket));
    const bytes = Buffer.from(a, 'base64url');
    for (const at of [0, 1, 20, 40, bytes.length - 1]) {
      const changed = Buffer.from(bytes);
      changed[at]! ^= 1;
      assert.equal(await tokens.openTicket(changed.toString('base64url')), undefined, `byte ${at}`);
    }
    assert.equal(await tokens.openTicket(bytes.subarray(0, 30).toString('base64url')), undefined, 'truncated');
    assert.equal(await tokens.openTicket('not a ticket'), undefined);
  });

  it('leave the params out (and the requests marked not to run again) when they would be too big', async () => {
    const tokens = new SessionTokens(Sealer.fromBase64(KEY));
    const big = { sid, requests: [{ id: 'x', method: 'tools/call', rerun: true, params: { text: 'y'.repeat(2000) } }] };
    assert.deepEqual(await tokens.openTicket(tokens.sealTicket(big)), { sid, requests: [{ id: 'x', method: 'tools/call', rerun: false }] });
  });

  it('sealed as JWE by a replica of the previous version still open', async () => {
    const legacy = await Sealer.fromBase64(KEY).seal('flotilla-resume', ticket);
    assert.deepEqual(await new SessionTokens(Sealer.fromBase64(KEY)).openTicket(legacy), ticket);
  });
});

describe('AeadEnvelope', () => {
  const master = new Uint8Array(Buffer.alloc(32, 3));

  it('opens only as the purpose it was sealed for', () => {
    const token = new AeadEnvelope(master, 'a').seal('text');
    assert.equal(new AeadEnvelope(master, 'a').open(token), 'text');
    assert.equal(new AeadEnvelope(master, 'b').open(token), undefined);
  });

  it('opens envelopes of many sealers (each seals under keys of its own)', () => {
    const reader = new AeadEnvelope(master, 'p');
    for (let i = 0; i < 100; i++) assert.equal(reader.open(new AeadEnvelope(master, 'p').seal(`m${i}`)), `m${i}`);
  });
});
