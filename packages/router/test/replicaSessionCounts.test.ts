/**
 * The per-identity session counts router replicas share for the mesh-wide cap (`ReplicaSessionCounts`,
 * `IdentitySessions`), over an in-memory stand-in for NATS (subject routing only): counts add up across
 * replicas, a replica's own heartbeat is not counted, invalid messages are dropped, a silent replica stops
 * counting, and the number of replicas followed is bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeJson, subjects } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { IdentitySessions } from '../src/limits/IdentitySessions.js';
import { ReplicaSessionCounts } from '../src/sessions/ReplicaSessionCounts.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const names = subjects('flotilla');

/** Delivers what is published to every subscriber of the same subject, at once. */
class Bus {
  readonly subscribers: Array<{ subject: string; callback: (err: Error | null, msg: Msg) => void }> = [];
  connection(): NatsConnection {
    return {
      isClosed: () => false,
      subscribe: (subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) => {
        const sub = { subject, callback: opts.callback };
        this.subscribers.push(sub);
        return { unsubscribe: () => void this.subscribers.splice(this.subscribers.indexOf(sub), 1) };
      },
      publish: (subject: string, data: Uint8Array) => {
        for (const s of [...this.subscribers]) if (s.subject === subject) s.callback(null, { subject, data } as Msg);
      },
    } as unknown as NatsConnection;
  }
}

function replica(bus: Bus, tag: string, max: number, staleAfterMs = 60_000): { sessions: IdentitySessions; counts: ReplicaSessionCounts } {
  let counts: ReplicaSessionCounts | undefined;
  const sessions = new IdentitySessions(max, { remote: { elsewhere: (p) => counts?.elsewhere(p) ?? 0 }, onChange: () => counts?.changed() });
  counts = new ReplicaSessionCounts({ nc: bus.connection(), subjects: names, tag, logger, local: () => sessions.local(), intervalMs: 60_000, staleAfterMs });
  counts.start();
  return { sessions, counts };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('replica session counts', () => {
  it('add up across replicas; closing a session frees the slot everywhere', async () => {
    const bus = new Bus();
    const a = replica(bus, 'aaaa', 3);
    const b = replica(bus, 'bbbb', 3);
    try {
      a.sessions.add('key:x', 's1');
      a.sessions.add('key:x', 's2');
      await tick();
      b.sessions.add('key:x', 's3');
      await tick();
      assert.equal(a.sessions.count('key:x'), 3);
      assert.equal(b.sessions.count('key:x'), 3);
      assert.equal(a.sessions.mayOpen('key:x'), false);
      assert.equal(b.sessions.mayOpen('key:x'), false);
      assert.equal(b.sessions.mayOpen('key:y'), true, 'another identity is not affected');
      assert.deepEqual(b.counts.describe().map(({ tag, sessions, principals }) => ({ tag, sessions, principals })), [{ tag: 'aaaa', sessions: 2, principals: 1 }]);
      a.sessions.remove('key:x', 's1');
      await tick();
      assert.equal(b.sessions.mayOpen('key:x'), true);
    } finally {
      a.counts.stop();
      b.counts.stop();
    }
  });

  it('a stopped replica says it holds nothing; a silent one stops counting after staleAfterMs', async () => {
    const bus = new Bus();
    const a = replica(bus, 'aaaa', 5, 50);
    const b = replica(bus, 'bbbb', 5, 50);
    b.sessions.add('key:x', 's1');
    await tick();
    assert.equal(a.sessions.count('key:x'), 1);
    b.counts.stop();
    assert.equal(a.sessions.count('key:x'), 0, 'stopping says so');
    bus.connection().publish(names.routerHeartbeats, encodeJson({ tag: 'cccc', at: Date.now(), sessions: { 'key:x': 4 } }));
    assert.equal(a.counts.elsewhere('key:x'), 4);
    assert.equal(a.counts.elsewhere('key:x', Date.now() + 50), 0, 'not heard for staleAfterMs: gone');
    a.counts.stop();
  });

  it('ignores its own heartbeat, drops invalid ones, and follows a bounded number of replicas', () => {
    const bus = new Bus();
    const nc = bus.connection();
    const counts = new ReplicaSessionCounts({ nc, subjects: names, tag: 'self', logger, local: () => new Map(), intervalMs: 60_000, maxReplicas: 3 });
    counts.start();
    try {
      nc.publish(names.routerHeartbeats, encodeJson({ tag: 'self', at: 1, sessions: { 'key:x': 7 } }));
      assert.equal(counts.elsewhere('key:x'), 0);
      for (const bad of [{ tag: 'r1', at: 1, sessions: { 'key:x': -1 } }, { tag: 'r1', at: 1, sessions: { 'key:x': 1.5 } }, { at: 1 }, { tag: 'r1', at: 1, sessions: 'many' }]) {
        nc.publish(names.routerHeartbeats, encodeJson(bad));
      }
      nc.publish(names.routerHeartbeats, new TextEncoder().encode('not json'));
      assert.equal(counts.elsewhere('key:x'), 0, 'invalid heartbeats count nothing');
      const tooMany = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`key:${i}`, 1]));
      nc.publish(names.routerHeartbeats, encodeJson({ tag: 'r1', at: 1, sessions: tooMany }));
      assert.equal(counts.describe().length, 0, 'a heartbeat naming too many principals is dropped');
      for (let i = 0; i < 10; i++) nc.publish(names.routerHeartbeats, encodeJson({ tag: `r${i}`, at: 1, sessions: { 'key:x': 1 } }));
      assert.equal(counts.describe().length, 3);
      assert.equal(counts.elsewhere('key:x'), 3);
    } finally {
      counts.stop();
    }
  });
});
