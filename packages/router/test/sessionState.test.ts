/**
 * A session's local copy of its shared record: newer records from the store replace it, but changes made
 * here that are still on their way to the store survive that (they are applied again on top).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionState } from '../src/front/SessionState.js';
import { applyChange, emptyRecord, type SessionChange, type SessionRecord } from '../src/sessions/SessionRecord.js';
import type { StoredRecord } from '../src/sessions/SessionStore.js';

/** A store whose writes finish when the test says so. */
class SlowStore {
  readonly writes: Array<{ change: SessionChange; finish: (stored: StoredRecord | undefined) => void; fail: (err: Error) => void }> = [];
  readonly record: SessionRecord = emptyRecord();
  revision = 1;

  publish = (change: SessionChange): Promise<StoredRecord | undefined> =>
    new Promise((finish, fail) => {
      this.writes.push({ change, finish, fail });
    });

  /** Lands the oldest write and returns the record it made. */
  land(): StoredRecord {
    const write = this.writes.shift()!;
    applyChange(this.record, write.change);
    const stored = { record: structuredClone(this.record), revision: ++this.revision };
    write.finish(stored);
    return stored;
  }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const where = { nodeId: 'n1', server: 'docs' };

describe('SessionState', () => {
  it('keeps a change that is still being saved when an older write comes back from the store', async () => {
    const store = new SlowStore();
    const state = new SessionState(store.publish);
    state.setLogLevel('debug');
    state.setSubscription('docs://readme', where);
    // The log level's write returns first: its record predates the subscription.
    const first = store.land();
    assert.equal(first.record.subscriptions['docs://readme'], undefined);
    await settle();
    state.adopt(first);
    assert.deepEqual(state.subscription('docs://readme'), where, 'the subscription vanished while its write was on its way');
    assert.equal(state.logLevel, 'debug');
    store.land();
    await settle();
    assert.deepEqual(state.subscription('docs://readme'), where);
  });

  it("takes another replica's newer record, with this replica's unsaved changes on top", async () => {
    const store = new SlowStore();
    const state = new SessionState(store.publish);
    state.setSubscription('docs://readme', where);
    const elsewhere = emptyRecord();
    elsewhere.logLevel = 'error';
    state.adopt({ record: elsewhere, revision: 50 });
    assert.equal(state.logLevel, 'error');
    assert.deepEqual(state.subscription('docs://readme'), where);
  });

  it('ignores records older than its copy', async () => {
    const store = new SlowStore();
    const state = new SessionState(store.publish, { record: { ...emptyRecord(), logLevel: 'info' }, revision: 10 });
    state.adopt({ record: { ...emptyRecord(), logLevel: 'error' }, revision: 9 });
    assert.equal(state.logLevel, 'info');
  });

  it('forgets a change whose write failed once a newer record replaces the copy', async () => {
    const store = new SlowStore();
    const state = new SessionState(store.publish);
    state.setSubscription('docs://readme', where);
    store.writes.shift()!.fail(new Error('NATS is not connected'));
    await settle();
    assert.deepEqual(state.subscription('docs://readme'), where, 'kept here until something newer comes');
    state.adopt({ record: emptyRecord(), revision: 5 });
    assert.equal(state.subscription('docs://readme'), undefined);
  });
});
