/**
 * Router replicas behind a real load balancer (Debian's HAProxy, per-request balancing): three routers
 * with the same session key on one NATS, two agents. Every request of a session may land on any replica;
 * what servers send a client (progress, log messages, sampling, resource updates, ticks outside calls)
 * reaches it through whichever replica holds its stream; kill -9 of a replica under load loses no session,
 * no read-only or idempotent call, and leaves no call hanging until the client's timeout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FlotillaErrorCode } from '../../packages/protocol/src/errors.js';
import { CallLoad, summarizeOutcomes } from '../harness/CallLoad.js';
import { chaosShapes } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { freePort } from '../harness/freePort.js';
import { HaproxyProcess } from '../harness/HaproxyProcess.js';
import { parseExposition } from '../harness/prometheusText.js';
import { connectStatefulClient, type StatefulClient, type StatefulClientOptions } from '../harness/statefulClients.js';

const ROUTERS = 3;

let mesh: FlotillaMesh;
let lb: HaproxyProcess;
const clients: StatefulClient[] = [];
let load: CallLoad | undefined;

/** Calls of `tool` each router answered, from its own /metrics. */
async function callsPerRouter(tool: string): Promise<number[]> {
  return Promise.all(
    mesh.routers.map(async (r) => {
      if (r.process.child.exitCode !== null || r.process.child.signalCode !== null) return 0;
      const m = parseExposition(await (await fetch(mesh.opsUrl('/metrics', r.url))).text());
      return m.sum('flotilla_router_calls_total', { tool });
    }),
  );
}

/** Calls a router has dispatched to nodes and not yet got an answer for, from its /metrics. */
async function inflightOn(url: string): Promise<number> {
  const m = parseExposition(await (await fetch(mesh.opsUrl('/metrics', url))).text());
  return m.sum('flotilla_router_inflight_calls', {});
}

async function connect(name: string, options: Omit<StatefulClientOptions, 'url' | 'name'> = {}): Promise<StatefulClient> {
  const c = await connectStatefulClient({ url: lb.url, name, ...options });
  clients.push(c);
  return c;
}

before(async () => {
  mesh = await FlotillaMesh.start();
  const lbPort = await freePort();
  const key = randomBytes(32).toString('base64');
  for (let i = 1; i <= ROUTERS; i++) {
    const port = await freePort();
    // Clients reach the routers under the load balancer's name; the tests read each router's ops API under its own.
    const args = ['--port', String(port), '--allowed-host', `127.0.0.1:${lbPort}`, '--allowed-host', `127.0.0.1:${port}`, '--strategy', 'round-robin'];
    await mesh.startRouter(args, `router-${i}`, { FLOTILLA_SESSION_KEY: key });
  }
  await Promise.all(
    ['rep-1', 'rep-2'].map((id) =>
      mesh.startAgent(id, ['--affinity', 'stateful=sticky'], ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow', 'ledger=@flotilla/examples/ledger', 'stateful=@flotilla/examples/stateful']),
    ),
  );
  await mesh.waitForCatalog({ echo_echo: ['rep-1', 'rep-2'], slow_work: ['rep-1', 'rep-2'], stateful_whoami: ['rep-1', 'rep-2'] });
  lb = await HaproxyProcess.startOn(lbPort, mesh.routers.map((r, i) => ({ name: `r${i + 1}`, port: Number(new URL(r.url).port) })));
});

after(async () => {
  await load?.stop();
  await Promise.allSettled(clients.map((c) => c.close()));
  await lb?.stop();
  await mesh?.stop();
});

describe('router replicas behind a load balancer', () => {
  it('serves every request of one session on any replica, the session id unchanged', async () => {
    const c = await connect('spread');
    const sessionId = c.sessionId;
    const before = await callsPerRouter('echo_echo');
    for (let i = 0; i < 30; i++) assert.equal((await c.call('echo_echo', { text: `n${i}` })).isError, undefined);
    const after = await callsPerRouter('echo_echo');
    const served = after.map((n, i) => n - before[i]!);
    assert.equal(served.reduce((a, b) => a + b, 0), 30);
    assert.ok(served.every((n) => n > 0), `every replica served some of the session's calls: ${served.join(', ')}; HAProxy said: ${lb.messages}`);
    assert.equal(c.sessionId, sessionId, 'the client never had to initialize again');
    assert.ok((await c.client.listTools()).tools.some((t) => t.name === 'stateful_whoami'));
  });

  it("delivers what servers send a client through whichever replica holds its stream: progress, logs, sampling, resource updates, ticks", async () => {
    const c = await connect('messages', { sampling: () => ({ model: 'lb-model', role: 'assistant', content: { type: 'text', text: 'sampled' } }) });
    // Progress of a call, on that call's own stream.
    const progress: number[] = [];
    const work = await c.client.callTool({ name: 'slow_work', arguments: { steps: 4, stepMs: 20 } }, undefined, { onprogress: (p) => void progress.push(p.progress) });
    assert.equal(work.isError, undefined);
    assert.deepEqual(progress, [1, 2, 3, 4]);
    // Log messages of a call, at the level the client set (on another replica, most likely).
    await c.client.setLoggingLevel('error');
    await c.call('stateful_log_burst', { tag: 'lb' });
    assert.deepEqual(c.logs.filter((l) => (l.data as { tag?: string }).tag === 'lb').map((l) => l.level), ['error', 'critical', 'alert', 'emergency']);
    // Sampling: the client's answer comes back on any replica and reaches the one that asked.
    for (let i = 0; i < 3; i++) assert.equal((await c.call('stateful_ask_llm', { prompt: `q${i}` })).structured.model, 'lb-model');
    assert.equal(c.counts.samplingRequests, 3);
    // Outside calls: a subscribed note's updates and the session's ticks, from the server's own stream.
    await c.client.subscribeResource({ uri: 'note://lb' });
    await c.call('stateful_note_put', { name: 'lb', text: 'one' });
    await c.waitFor('the update of the subscribed note', (x) => x.resourceUpdates.includes('note://lb'));
    await c.client.setLoggingLevel('info');
    await c.call('stateful_ticks_start', { intervalMs: 50 });
    await c.waitFor('ticks on the standalone stream', (x) => x.logs.filter((l) => l.logger === 'ticks').length >= 3);
    const stop = await c.call<{ ticks: number }>('stateful_ticks_stop');
    await c.waitFor('every tick sent before the stop', (x) => x.logs.filter((l) => l.logger === 'ticks').length === stop.structured.ticks);
  });

  it('loses no session and no read-only or idempotent call when a replica is killed under load, and leaves no call hanging', async () => {
    const victim = mesh.routers[0]!;
    const clientTimeoutMs = 60_000;
    load = new CallLoad(lb.url, { workers: 6, shapes: chaosShapes(250, 6, 'lb'), clientTimeoutMs });
    await load.start();
    await eventually(() => assert.ok(load!.count() >= 20, `calls so far: ${load!.count()}`), 30_000);
    // Kill while the victim runs calls (two at once: at least one of them a 1.5 s one, so it is still running when
    // the kill lands on a loaded machine), else the kill proves nothing.
    await eventually(async () => assert.ok((await inflightOn(victim.url)) >= 2, 'calls in flight on the victim'), 30_000, 5);
    const killedAt = Date.now();
    victim.process.signal('SIGKILL');
    await victim.process.exited;
    await eventually(() => assert.ok(load!.count((o) => o.startedAt > killedAt) >= 40, `calls after the kill: ${load!.count((o) => o.startedAt > killedAt)}`), 60_000);
    const outcomes = await load.stop();
    load = undefined;
    const summary = summarizeOutcomes(outcomes);
    assert.deepEqual(outcomes.filter((o) => o.hung).map((o) => `${o.tool} at ${new Date(o.startedAt).toISOString()} (killed at ${new Date(killedAt).toISOString()}): ${o.message}`), [], `no call waited for the client's timeout: ${summary}`);
    const lost = outcomes.filter((o) => !o.ok && o.kind !== 'non-idempotent');
    assert.deepEqual(lost.map((o) => `${o.tool}: ${o.code} ${o.message}`), [], `read-only and idempotent calls all answered: ${summary}`);
    // A non-idempotent call cut off by the kill says so, and may be retried by the client only knowingly.
    for (const o of outcomes.filter((x) => !x.ok && x.kind === 'non-idempotent')) {
      assert.equal(o.code, FlotillaErrorCode.ReplicaLost, `${o.message}`);
      assert.ok(o.startedAt <= killedAt + 2000, 'only calls in flight at the kill are cut off');
    }
    assert.ok(outcomes.every((o) => o.ms < clientTimeoutMs / 2), 'every call ended well before the client would have given up');
    assert.ok(outcomes.filter((o) => o.startedAt > killedAt).every((o) => o.ok || o.kind === 'non-idempotent'), summary);
    // The kill cut calls off (else this proved nothing): their clients resumed their streams on the survivors.
    const resumed = mesh.routers.slice(1).flatMap((r) => r.process.lines.filter((l) => l.msg === 'a client resumed a stream of another replica; finishing it here'));
    assert.ok(resumed.length >= 1, `no call was in flight on the killed replica: ${summary}`);
    process.stderr.write(`# router-replicas: ${outcomes.length} calls around the kill; ${summary}\n`);
  });
});
