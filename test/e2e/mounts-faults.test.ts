/**
 * Faults of stdio mounts, with real processes: the example stdio `worker` mounted on two agents behind a
 * real router.
 * - kill -9 of a shared process mid-call under load: calls in flight fail at once and are retried on the
 *   other node when their tool allows it (the non-idempotent `append` fails with NodeFailed instead),
 *   no call hangs, and the process is restarted (with backoff) and serves again;
 * - kill -9 of a per-session process mid-call: that client's call is retried elsewhere and its session
 *   gets a new process;
 * - a command that crashes at once: NOT_SERVING, restarts spaced by a doubling delay (no tight loop),
 *   and the router sends that server's calls to the node where it works.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FlotillaErrorCode } from '../../packages/protocol/src/errors.js';
import { CallLoad, summarizeOutcomes, type CallShape } from '../harness/CallLoad.js';
import { ChaosMesh, type NodesView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';
import type { LogLine } from '../harness/FlotillaProcess.js';
import { WORKER_BIN, grpcStatus, nodeEntry, processAlive, writeAgentConfig } from '../harness/mounts.js';

let mesh: ChaosMesh;
let dir: string;
let load: CallLoad | undefined;
const grpc: Record<string, string> = {};

const CRASH_RESTART = { initialDelayMs: 200, maxDelayMs: 3200, stableAfterMs: 10_000 };

const shapes: CallShape[] = [
  { tool: 'worker_work', kind: 'idempotent', args: () => ({ steps: 8, stepMs: 50 }) },
  { tool: 'worker_whoami', kind: 'read-only', args: () => ({}) },
  { tool: 'worker_append', kind: 'non-idempotent', args: (seq) => ({ entry: `kill-${seq}`, stepMs: 300 }) },
];

/** Log lines of one agent about one server. */
function serverLines(nodeId: string, server: string, msg: string): LogLine[] {
  return mesh.agent(nodeId).lines.filter((l) => l.server === server && l.msg === msg);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-mount-faults-'));
  const worker = nodeEntry(WORKER_BIN);
  const perSession = nodeEntry(WORKER_BIN, { flotilla: { sessions: 'per-session', pool: { warm: 1, max: 8 }, affinity: 'sticky' } });
  const crashing = { command: process.execPath, args: ['-e', 'process.exit(3)'], flotilla: { restart: CRASH_RESTART } };
  mesh = await ChaosMesh.start();
  await mesh.startRouter();
  const configs = {
    f1: await writeAgentConfig(join(dir, 'f1.json'), { worker, workerp: perSession, flaky: worker }),
    f2: await writeAgentConfig(join(dir, 'f2.json'), { worker, workerp: perSession, flaky: crashing }),
  };
  for (const id of ['f1', 'f2'] as const) grpc[id] = String((await (await mesh.startAgent(id, ['--config', configs[id]], [])).ready()).grpc);
  await mesh.waitForCatalog({ worker_work: ['f1', 'f2'], workerp_work: ['f1', 'f2'], flaky_whoami: ['f1'] });
});

after(async () => {
  await load?.stop();
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('faults of stdio mounts', () => {
  test('kill -9 of a shared process mid-call: retried elsewhere when allowed, nothing hangs, the process comes back', async () => {
    const pid = Number(serverLines('f1', 'worker', 'stdio server process answered initialize').at(-1)?.pid);
    assert.ok(pid > 0 && processAlive(pid), 'the worker process of f1 runs');
    load = new CallLoad(mesh.routerUrl, { workers: 6, shapes, clientTimeoutMs: 30_000 });
    await load.start();
    await eventually(async () => {
      const f1 = (await mesh.api<NodesView>('/api/v1/nodes')).nodes.find((n) => n.nodeId === 'f1');
      assert.ok(load!.count() >= 12 && (f1?.outstanding ?? 0) >= 2, `calls done ${load!.count()}, on f1 ${f1?.outstanding}`);
    }, 30_000, 20);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    // Restarted: a new process answered initialize, after the backoff delay it logged.
    const restarted = await eventually(() => {
      const line = serverLines('f1', 'worker', 'stdio server process answered initialize').find((l) => Number(l.pid) !== pid);
      assert.ok(line, 'a new worker process on f1');
      return line;
    }, 30_000);
    const exit = serverLines('f1', 'worker', 'stdio server process exited; restarting').at(-1);
    assert.ok(exit && Number(exit.restartInMs) >= CRASH_RESTART.initialDelayMs, 'the restart waited its backoff delay');
    assert.ok(Date.parse(String(restarted.time)) - killedAt >= Number(exit.restartInMs), 'no restart before the delay');
    await eventually(async () => assert.equal(await grpcStatus(grpc.f1!, 'worker'), 'SERVING'), 20_000);
    await mesh.waitForReplicas('worker_work', ['f1', 'f2']);
    const afterRestart = load.count();
    await eventually(() => assert.ok(load!.count() >= afterRestart + 20, `calls ${load!.count()}, in flight: ${load!.describeInFlight()}`), 60_000);
    const outcomes = await load.stop();
    const summary = summarizeOutcomes(outcomes);
    assert.equal(outcomes.filter((o) => o.hung).length, 0, `hung calls: ${summary}`);
    assert.deepEqual(outcomes.filter((o) => o.kind !== 'non-idempotent' && !o.ok), [], `read-only/idempotent calls lost: ${summary}`);
    for (const o of outcomes.filter((x) => x.kind === 'non-idempotent' && !x.ok)) {
      assert.equal(o.code, FlotillaErrorCode.NodeFailed, `${o.message} (${summary})`);
      assert.match(o.message!, /Node f1 failed while running worker_append: .*not retried because worker_append is not marked read-only or idempotent/);
    }
    const failedOver = mesh.routerLines((l) => l.msg === 'call failed on a node; trying another replica' && l.nodeId === 'f1').length;
    const nodeFailed = outcomes.filter((o) => o.code === FlotillaErrorCode.NodeFailed).length;
    assert.ok(failedOver + nodeFailed >= 1, `the kill caught no call in flight: ${summary}`);
    process.stderr.write(`# mount kill -9: ${outcomes.length} calls, ${failedOver} failed over, ${nodeFailed} NodeFailed; ${summary}\n`);
  });

  test('kill -9 of a per-session process mid-call: the call is retried elsewhere, the session gets a new process', async () => {
    const client = await mesh.connectClient('per-session');
    const whoami = async (): Promise<number> => ((await client.client.callTool({ name: 'workerp_whoami' })).structuredContent as { pid: number }).pid;
    const pid = await whoami();
    assert.equal(await whoami(), pid, 'sticky: the session keeps its process');
    const call = client.client.callTool({ name: 'workerp_work', arguments: { steps: 40, stepMs: 50 } }, undefined, { timeout: 30_000 });
    await eventually(async () => {
      const nodes = (await mesh.api<NodesView>('/api/v1/nodes')).nodes;
      assert.ok(nodes.some((n) => n.outstanding > 0), 'the call is in flight');
    }, 10_000, 20);
    process.kill(pid, 'SIGKILL');
    const result = await call;
    assert.notEqual(result.isError, true);
    const retriedOn = (result.structuredContent as { pid: number }).pid;
    assert.notEqual(retriedOn, pid, 'the work ran again in another process');
    assert.notEqual(await whoami(), pid);
  });

  test('a crash-looping command is NOT_SERVING, restarts with a doubling delay, and its calls go to the node where it works', async () => {
    const failures = await eventually(() => {
      const lines = serverLines('f2', 'flaky', 'stdio server failed to start; restarting');
      assert.ok(lines.length >= 5, `${lines.length} failed starts so far`);
      return lines;
    }, 30_000);
    const delays = failures.slice(0, 5).map((l) => Number(l.restartInMs));
    assert.deepEqual(delays, [200, 400, 800, 1600, 3200], 'each failure doubles the delay, up to the cap');
    // Each start came no sooner than the delay logged before it: no tight loop, however loaded the machine.
    const starts = serverLines('f2', 'flaky', 'stdio server process started').map((l) => Date.parse(String(l.time)));
    for (let i = 0; i < 4; i++) {
      const failedAt = Date.parse(String(failures[i]!.time));
      const next = starts.find((t) => t >= failedAt);
      assert.ok(next !== undefined && next - failedAt >= delays[i]! - 5, `start ${i + 2} came ${next === undefined ? 'never' : next - failedAt} ms after a ${delays[i]} ms delay`);
    }
    assert.equal(await grpcStatus(grpc.f2!, 'flaky'), 'NOT_SERVING');
    assert.equal(await grpcStatus(grpc.f2!, 'worker'), 'SERVING', 'the other servers of the node serve on');
    const readyz = (await (await fetch(`${String((await mesh.agent('f2').ready()).url)}/readyz`)).json()) as { ready: boolean; reasons: string[]; servers: Record<string, { serving: boolean; mount?: { consecutiveFailures: number } }> };
    assert.equal(readyz.ready, true, 'a broken mount does not take the node out');
    assert.ok(readyz.reasons.includes('server flaky does not answer'));
    assert.ok((readyz.servers.flaky?.mount?.consecutiveFailures ?? 0) >= 5);
    const client = await mesh.connectClient('crash-loop');
    for (let i = 0; i < 5; i++) {
      const r = await client.client.callTool({ name: 'flaky_whoami' });
      assert.notEqual(r.isError, true, 'answered by the node where flaky works');
    }
    const replicas = (await mesh.api<{ tools: Array<{ name: string; replicas: Array<{ nodeId: string }> }> }>('/api/v1/tools')).tools.find((t) => t.name === 'flaky_whoami')?.replicas.map((r) => r.nodeId);
    assert.deepEqual(replicas, ['f1']);
  });
});
