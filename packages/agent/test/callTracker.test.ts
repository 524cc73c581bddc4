/**
 * The node's call book on its own: slots, the FIFO queue behind them, busy refusals, and calls that end
 * while queued (they never run and free their place at once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallTracker } from '../src/calls/CallTracker.js';
import type { TrackedCall } from '../src/calls/TrackedCall.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function book(capacity: number, maxQueue: number): { tracker: CallTracker; ran: string[]; admit: (tool: string) => TrackedCall } {
  const tracker = new CallTracker({ nodeId: 'n1', capacity, maxQueue });
  const ran: string[] = [];
  const admit = (tool: string): TrackedCall => {
    const admission = tracker.admit({ callId: tool, server: 's', tool, deadline: undefined }, { run: () => ran.push(tool), expire: () => {} });
    assert.ok(admission.ok, `${tool} admitted`);
    tracker.enqueue(admission.call);
    return admission.call;
  };
  return { tracker, ran, admit };
}

describe('CallTracker', () => {
  it('runs a call at once when a slot is free, queues the rest in order, and refuses busy past the queue', async () => {
    const { tracker, ran, admit } = book(1, 2);
    const a = admit('a');
    assert.deepEqual(ran, ['a'], 'a free slot runs the call in the same tick');
    const b = admit('b');
    const c = admit('c');
    assert.deepEqual(tracker.load(), { inflight: 1, queued: 2, capacity: 1, draining: false, tasks: 0 });
    const refused = tracker.admit({ callId: 'd', server: 's', tool: 'd', deadline: undefined }, { run: () => {}, expire: () => {} });
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.reason, 'busy');
    tracker.finish(a, 'completed');
    await tick();
    assert.deepEqual(ran, ['a', 'b']);
    tracker.finish(b, 'completed');
    await tick();
    assert.deepEqual(ran, ['a', 'b', 'c']);
    tracker.finish(c, 'completed');
    assert.deepEqual(tracker.load(), { inflight: 0, queued: 0, capacity: 1, draining: false, tasks: 0 });
  });

  it('drops a call that ends while queued: it never runs, and its place is free at once', async () => {
    const { tracker, ran, admit } = book(1, 1);
    const a = admit('a');
    const b = admit('b');
    tracker.finish(b, 'cancelled');
    assert.equal(tracker.load().queued, 0);
    const c = admit('c');
    tracker.finish(a, 'completed');
    await tick();
    assert.deepEqual(ran, ['a', 'c'], 'the cancelled call never ran');
    tracker.finish(c, 'completed');
    await tracker.whenIdle();
  });

  it('a new call waits behind queued ones even when a slot has just freed', async () => {
    const { tracker, ran, admit } = book(1, 2);
    const a = admit('a');
    admit('b');
    tracker.finish(a, 'completed');
    // The slot is free until the queue's next turn; the newcomer must not jump the queue.
    admit('c');
    await tick();
    assert.deepEqual(ran, ['a', 'b']);
    assert.equal(tracker.load().queued, 1);
  });
});
