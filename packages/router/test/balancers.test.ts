import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeastOutstandingBalancer, RoundRobinBalancer, createBalancer, type ReplicaView } from '../src/index.js';

const replica = (nodeId: string, outstanding = 0, capacity = 4): ReplicaView => ({ nodeId, outstanding, capacity });

describe('LeastOutstandingBalancer', () => {
  it('picks the replica with the fewest outstanding calls', () => {
    const b = new LeastOutstandingBalancer();
    const picked = b.pick([replica('a', 3), replica('b', 1), replica('c', 2)], { key: 't' });
    assert.equal(picked?.nodeId, 'b');
  });

  it('shares work among tied replicas instead of always taking the first', () => {
    const b = new LeastOutstandingBalancer();
    const candidates = [replica('a'), replica('b'), replica('c')];
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const id = b.pick(candidates, { key: 't' })!.nodeId;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), ['a', 'b', 'c']);
    for (const n of counts.values()) assert.equal(n, 100);
  });

  it('never picks a busier replica while a less busy one exists', () => {
    const b = new LeastOutstandingBalancer();
    for (let i = 0; i < 50; i++) {
      const picked = b.pick([replica('busy', 5), replica('idle-1', 0), replica('idle-2', 0)], { key: 't' })!;
      assert.notEqual(picked.nodeId, 'busy');
    }
  });

  it('returns undefined without candidates', () => {
    assert.equal(new LeastOutstandingBalancer().pick([], { key: 't' }), undefined);
  });
});

describe('RoundRobinBalancer', () => {
  it('takes replicas in turn, per key', () => {
    const b = new RoundRobinBalancer();
    const candidates = [replica('a', 9), replica('b'), replica('c')];
    assert.deepEqual([1, 2, 3, 4].map(() => b.pick(candidates, { key: 'x' })!.nodeId), ['a', 'b', 'c', 'a']);
    assert.equal(b.pick(candidates, { key: 'y' })!.nodeId, 'a');
  });

  it('returns undefined without candidates', () => {
    assert.equal(new RoundRobinBalancer().pick([], { key: 't' }), undefined);
  });
});

describe('createBalancer', () => {
  it('builds each configured strategy', () => {
    assert.equal(createBalancer('least-outstanding').name, 'least-outstanding');
    assert.equal(createBalancer('round-robin').name, 'round-robin');
  });
});
