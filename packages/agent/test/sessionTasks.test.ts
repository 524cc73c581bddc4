/**
 * How the agent follows MCP tasks on the wire (`SessionTasks`) and counts them in the node's load (the real
 * `CallTracker`): every way a task ends, and what leaves it open.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallTracker } from '../src/calls/CallTracker.js';
import { SessionTasks, UNBOUNDED_TASK_FORGET_MS } from '../src/calls/SessionTasks.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function task(taskId: string, status: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { taskId, status, ttl: 60_000, createdAt: new Date(T0).toISOString(), lastUpdatedAt: new Date(T0).toISOString(), pollInterval: 100, ...extra };
}

function setup(): { tracker: CallTracker; tasks: SessionTasks; open: () => number } {
  const tracker = new CallTracker({ nodeId: 'n', capacity: 1, maxQueue: 0 });
  const tasks = new SessionTasks('stateful', tracker);
  return { tracker, tasks, open: () => tracker.load().tasks };
}

const request = (id: number, method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: '2.0' as const, id, method, params });
const result = (id: number, value: Record<string, unknown>) => ({ jsonrpc: '2.0' as const, id, result: value });
const error = (id: number, code: number) => ({ jsonrpc: '2.0' as const, id, error: { code, message: 'x' } });

describe('SessionTasks', () => {
  test('a CreateTaskResult opens a task, counted per server; a terminal status notification ends it', async () => {
    const { tracker, tasks, open } = setup();
    assert.equal(tasks.created({ task: task('t1', 'working') }, 'long_job', T0), 't1');
    assert.equal(open(), 1);
    assert.deepEqual(tracker.openTasks(), [['stateful', 1]]);
    let idle = false;
    void tracker.whenIdle().then(() => (idle = true));
    tasks.seen(task('t1', 'input_required'), T0 + 10);
    assert.equal(open(), 1, 'input_required is still open');
    tasks.seen(task('t1', 'completed'), T0 + 20);
    assert.equal(open(), 0);
    await Promise.resolve();
    assert.equal(idle, true, 'the node is idle once its last task ended');
    assert.ok(tasks.lastEndedAt > 0);
    tasks.seen(task('t1', 'completed'), T0 + 30);
    assert.equal(open(), 0, 'a task ends once');
  });

  test('a task created already terminal, a malformed result or an unknown task changes nothing', () => {
    const { tasks, open } = setup();
    assert.equal(tasks.created({ task: task('done', 'completed') }, 'x', T0), 'done');
    assert.equal(tasks.created({ content: [] }, 'x', T0), undefined);
    assert.equal(tasks.created({ task: { status: 'working' } }, 'x', T0), undefined);
    tasks.seen(task('stranger', 'completed'));
    tasks.seen('not a task');
    assert.equal(open(), 0);
    assert.equal(tasks.lastEndedAt, 0);
  });

  test('answers to tasks/get, tasks/cancel, tasks/result and tasks/list end the tasks they show terminal', () => {
    const { tasks, open } = setup();
    for (const id of ['g', 'c', 'r', 'l1', 'l2']) tasks.created({ task: task(id, 'working') }, 'x', T0);
    assert.equal(open(), 5);
    tasks.request(request(1, 'tasks/get', { taskId: 'g' }));
    tasks.response(result(1, task('g', 'working')));
    assert.equal(open(), 5, 'still working');
    tasks.request(request(2, 'tasks/get', { taskId: 'g' }));
    tasks.response(result(2, task('g', 'failed')));
    tasks.request(request(3, 'tasks/cancel', { taskId: 'c' }));
    tasks.response(result(3, task('c', 'cancelled')));
    tasks.request(request(4, 'tasks/result', { taskId: 'r' }));
    assert.equal(tasks.isWaitingForResult(4), true);
    tasks.response(result(4, { content: [{ type: 'text', text: 'done' }] }));
    assert.equal(tasks.isWaitingForResult(4), false);
    tasks.request(request(5, 'tasks/list'));
    tasks.response(result(5, { tasks: [task('l1', 'completed'), task('l2', 'working'), 'junk'] }));
    assert.equal(open(), 1, 'only l2 is left');
    // A response to a request that was no task request is ignored.
    tasks.response(result(6, task('l2', 'completed')));
    assert.equal(open(), 1);
  });

  test('"not found" (-32602) for a task ends it; other errors leave it open', () => {
    const { tasks, open } = setup();
    tasks.created({ task: task('a', 'working') }, 'x', T0);
    tasks.request(request(1, 'tasks/get', { taskId: 'a' }));
    tasks.response(error(1, -32603));
    assert.equal(open(), 1);
    tasks.request(request(2, 'tasks/result', { taskId: 'a' }));
    tasks.response(error(2, -32602));
    assert.equal(open(), 0);
  });

  test('a task is forgotten at creation + TTL, or an hour after it was last heard of when it has none', () => {
    const { tasks, open } = setup();
    tasks.created({ task: task('ttl', 'working', { ttl: 1000 }) }, 'x', T0 + 5000);
    tasks.created({ task: task('forever', 'working', { ttl: null }) }, 'x', T0);
    assert.equal(tasks.sweep(T0 + 999), 0);
    assert.equal(tasks.sweep(T0 + 1000), 1, 'bounded by createdAt + ttl, whenever the agent saw it');
    assert.equal(open(), 1);
    tasks.seen(task('forever', 'working', { ttl: null }), T0 + 30 * 60_000);
    assert.equal(tasks.sweep(T0 + UNBOUNDED_TASK_FORGET_MS), 0, 'heard of half an hour in');
    assert.equal(tasks.sweep(T0 + 30 * 60_000 + UNBOUNDED_TASK_FORGET_MS), 1);
    assert.equal(open(), 0);
  });

  test('closing the session ends all of its tasks', () => {
    const { tracker, tasks, open } = setup();
    const other = new SessionTasks('other', tracker);
    tasks.created({ task: task('a', 'working') }, 'x', T0);
    tasks.created({ task: task('b', 'input_required') }, 'x', T0);
    other.created({ task: task('c', 'working') }, 'x', T0);
    assert.equal(open(), 3);
    tasks.clear();
    assert.equal(open(), 1);
    assert.deepEqual(tracker.openTasks(), [['stateful', 0], ['other', 1]]);
  });
});
