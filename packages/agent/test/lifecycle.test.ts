/**
 * Agent lifecycle: control requests over NATS, drain (refusal with NodeDraining while in-flight calls
 * finish, then deregistration and events), gRPC health with Watch, signals, starting before NATS,
 * re-announcing on tool changes, and clear errors for modules that cannot be hosted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import {
  ControlReplySchema,
  FlotillaErrorCode,
  LoadReportSchema,
  NodeEventSchema,
  PROTOCOL_VERSION,
  decodeJson,
  encodeJson,
  subjects,
} from '@flotilla/protocol';
import { createRegistry, type Registry } from '@flotilla/registry';
import { createLogger } from '@flotilla/telemetry';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { installSignalHandlers, startAgent } from '../src/index.js';
import { closeClient, connectClient, startTestAgent, waitUntil } from './support/agentFixture.js';
import { CollectedSubject } from './support/natsSubscription.js';
import { RegistryView } from './support/registryView.js';

const SLOW = fileURLToPath(new URL('../../examples/src/slow.ts', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const subj = subjects('flotilla');
const quiet = createLogger({ name: 'test', level: 'silent' });

let nats: NatsServerProcess;
let nc: NatsConnection;
let registry: Registry;
let view: RegistryView;

async function control(nodeId: string, payload: Uint8Array) {
  const msg = await nc.request(subj.control(nodeId), payload, { timeout: 10_000 });
  const decoded = decodeJson(ControlReplySchema, msg.data);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.error);
  return decoded.value;
}


type HealthClient = grpc.Client & {
  check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};
const HealthClientCtor = grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health') as unknown as new (address: string, creds: grpc.ChannelCredentials) => HealthClient;

function grpcCheck(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => client.check({ service }, (err, res) => (err ? reject(err) : resolve(res!.status))));
}

before(async () => {
  nats = await NatsServerProcess.start();
  nc = await connect({ servers: nats.url });
  registry = createRegistry({ kind: 'nats-kv', nc, logger: quiet });
  view = new RegistryView(registry);
});

after(async () => {
  await view?.stop();
  await registry?.close();
  await nc?.close();
  await nats?.dispose();
});

describe('control over NATS', () => {
  test('status is answered; malformed requests get ok=false with the reason', async () => {
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }] });
    try {
      const status = await control(agent.nodeId, encodeJson({ v: PROTOCOL_VERSION, op: 'status' }));
      assert.deepEqual(status, { v: PROTOCOL_VERSION, ok: true, nodeId: agent.nodeId, draining: false, inflight: 0, queued: 0 });
      const unknownOp = await control(agent.nodeId, encodeJson({ v: PROTOCOL_VERSION, op: 'explode' }));
      assert.equal(unknownOp.ok, false);
      assert.match(unknownOp.error ?? '', /invalid control request: op/);
      const notJson = await control(agent.nodeId, new TextEncoder().encode('drain now please'));
      assert.equal(notJson.ok, false);
      assert.match(notJson.error ?? '', /invalid JSON/);
      // Still serving after the bad requests.
      assert.equal((await control(agent.nodeId, encodeJson({ v: PROTOCOL_VERSION, op: 'status' }))).ok, true);
    } finally {
      await agent.stop();
    }
  });
});

describe('drain', () => {
  test('refuses new calls with NodeDraining, lets in-flight calls finish, then deregisters; gRPC health follows', async () => {
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'slow', module: SLOW }] });
    const events = new CollectedSubject(nc, subj.events, NodeEventSchema);
    const loads = new CollectedSubject(nc, subj.load(agent.nodeId), LoadReportSchema);
    const health = new HealthClientCtor(agent.grpcAddress, grpc.credentials.createInsecure());
    const watched: string[] = [];
    const watch = health.watch({ service: '' });
    watch.on('data', (r: { status: string }) => watched.push(r.status));
    watch.on('error', () => {});
    const client = await connectClient(agent, 'slow');
    try {
      await view.waitForNode(agent.nodeId);
      assert.equal(await grpcCheck(health, ''), 'SERVING');
      assert.equal(await grpcCheck(health, 'slow'), 'SERVING');
      await waitUntil(() => watched.includes('SERVING'), 20_000, 'Watch to report SERVING');

      let progressed = false;
      const inflight = client.callTool({ name: 'work', arguments: { steps: 40, stepMs: 50 } }, undefined, { onprogress: () => (progressed = true), timeout: 60_000 });
      await waitUntil(() => progressed, 20_000, 'in-flight call progressing');

      const reply = await control(agent.nodeId, encodeJson({ v: PROTOCOL_VERSION, op: 'drain', graceMs: 30_000 }));
      assert.equal(reply.ok, true);
      assert.equal(reply.draining, true);

      await assert.rejects(client.callTool({ name: 'status', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === FlotillaErrorCode.NodeDraining && /draining/.test(e.message));
      await events.waitFor((e) => e.type === 'draining' && e.nodeId === agent.nodeId);
      await loads.waitFor((l) => l.draining);
      assert.equal(await grpcCheck(health, ''), 'NOT_SERVING');
      await waitUntil(() => watched.includes('NOT_SERVING'), 20_000, 'Watch to report NOT_SERVING');

      const result = await inflight;
      assert.deepEqual(result.content, [{ type: 'text', text: 'done: 40 steps of 50 ms' }]);

      await agent.stopped;
      await events.waitFor((e) => e.type === 'left' && e.nodeId === agent.nodeId);
      await view.waitForGone(agent.nodeId);
      assert.deepEqual(events.errors, []);
    } finally {
      watch.cancel();
      health.close();
      events.stop();
      loads.stop();
      await closeClient(client);
      await agent.stop();
    }
  });

  test('the draining flag reaches the registry record while calls finish', async () => {
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'slow', module: SLOW }] });
    const client = await connectClient(agent, 'slow');
    try {
      await view.waitForNode(agent.nodeId);
      const controller = new AbortController();
      const inflight = client.callTool({ name: 'work', arguments: { steps: 10_000, stepMs: 50 } }, undefined, { signal: controller.signal }).catch(() => undefined);
      await waitUntil(() => (agent.health().load as { inflight: number }).inflight === 1, 20_000, 'call running');
      const drained = agent.drain(60_000);
      await view.waitForNode(agent.nodeId, (n) => n.record.draining && n.ping?.status === 'draining');
      const ready = await fetch(`${agent.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(JSON.stringify(await ready.json()), /draining/);
      controller.abort('let the drain end');
      await inflight;
      await drained;
      await view.waitForGone(agent.nodeId);
    } finally {
      await closeClient(client);
      await agent.stop();
    }
  });

  test('SIGTERM drains and exits 0 through installSignalHandlers', async () => {
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }] });
    const exits: number[] = [];
    const remove = installSignalHandlers(agent, { exit: (code) => exits.push(code) });
    try {
      await view.waitForNode(agent.nodeId);
      process.emit('SIGTERM');
      await agent.stopped;
      await waitUntil(() => exits.length > 0, 20_000, 'exit');
      assert.deepEqual(exits, [0]);
      await view.waitForGone(agent.nodeId);
    } finally {
      remove();
      await agent.stop();
    }
  });
});

describe('drain with a client that never answers the server', () => {
  test('a fastmcp session whose client declared roots but opened no stream does not hold the drain (fastmcp waits 60 s for roots)', async () => {
    const { agent, logs } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }] });
    const url = `${agent.url}/mcp/echo`;
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { roots: { listChanged: true } }, clientInfo: { name: 'mute', version: '1' } } }),
    });
    assert.equal(init.status, 200);
    await init.text();
    const session = init.headers.get('mcp-session-id')!;
    const initialized = await fetch(url, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    assert.equal(initialized.status, 202);
    // fastmcp now asks this client for its roots on a stream the client never opened, and waits.
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    await agent.drain(5000);
    const tookMs = Date.now() - started;
    // Well under the 60 s fastmcp's question waits, and under the drain grace: nothing was running.
    assert.ok(tookMs < 4000, `the drain took ${tookMs} ms`);
    assert.ok(logs.lines.some((l) => l.msg === 'agent stopped' && l.reason === 'drained'));
  });
});

describe('server health', () => {
  test('a server that stops answering is NOT_SERVING (and the node not ready) until it answers again', async () => {
    const module = fixture('breakable.ts');
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }, { name: 'breakable', module }] });
    const health = new HealthClientCtor(agent.grpcAddress, grpc.credentials.createInsecure());
    const watched: string[] = [];
    const watch = health.watch({ service: 'breakable' });
    watch.on('data', (r: { status: string }) => watched.push(r.status));
    watch.on('error', () => {});
    const { setBroken } = (await import(module)) as { setBroken: (v: boolean) => void };
    try {
      await waitUntil(() => watched.includes('SERVING'), 20_000, 'SERVING');
      setBroken(true);
      await waitUntil(() => watched.includes('NOT_SERVING'), 20_000, 'NOT_SERVING');
      assert.equal(await grpcCheck(health, 'breakable'), 'NOT_SERVING');
      assert.equal(await grpcCheck(health, ''), 'NOT_SERVING');
      assert.equal(await grpcCheck(health, 'echo'), 'SERVING');
      const ready = await fetch(`${agent.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(JSON.stringify(await ready.json()), /server breakable does not answer/);
      setBroken(false);
      await waitUntil(() => watched.lastIndexOf('SERVING') > watched.indexOf('NOT_SERVING'), 20_000, 'SERVING again');
      assert.equal(await grpcCheck(health, ''), 'SERVING');
    } finally {
      setBroken(false);
      watch.cancel();
      health.close();
      await agent.stop();
    }
  });
});

describe('starting without NATS', () => {
  test('serves HTTP at once and joins the mesh when NATS comes up', async () => {
    const late = await NatsServerProcess.start();
    await late.stop();
    const { agent, logs } = await startTestAgent({ natsUrl: late.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }] });
    let lateNc: NatsConnection | undefined;
    try {
      const ready = logs.find((l) => l.msg === 'agent ready');
      assert.ok(ready, 'ready although NATS is down');
      assert.notEqual(ready.nats, 'connected');
      const client = await connectClient(agent, 'echo');
      assert.deepEqual((await client.callTool({ name: 'echo', arguments: { text: 'offline' } })).content, [{ type: 'text', text: 'offline' }]);
      await closeClient(client);
      const health = agent.health();
      assert.equal(health.status, 'degraded');
      assert.ok(health.reasons.some((r) => /NATS/.test(r)), JSON.stringify(health.reasons));

      await late.restart();
      lateNc = await connect({ servers: late.url });
      const lateRegistry = createRegistry({ kind: 'nats-kv', nc: lateNc, logger: quiet });
      const lateView = new RegistryView(lateRegistry);
      await lateView.waitForNode(agent.nodeId, () => true, 30_000);
      await lateView.stop();
      await waitUntil(() => agent.health().nats === 'connected' && agent.health().status === 'ok', 20_000, 'healthy');
      const loads = new CollectedSubject(lateNc, subj.load(agent.nodeId), LoadReportSchema);
      await loads.waitFor(() => true);
      loads.stop();
      await lateRegistry.close();
      await lateNc.close();

      // NATS going away again neither stops the agent serving nor keeps it from resuming its reports.
      await late.stop();
      await waitUntil(() => agent.health().nats !== 'connected', 20_000, 'agent to notice NATS is gone');
      const during = await connectClient(agent, 'echo');
      assert.deepEqual((await during.callTool({ name: 'echo', arguments: { text: 'outage' } })).content, [{ type: 'text', text: 'outage' }]);
      await closeClient(during);
      await late.restart();
      await waitUntil(() => agent.health().nats === 'connected', 30_000, 'agent to reconnect');
      lateNc = await connect({ servers: late.url });
      const resumed = new CollectedSubject(lateNc, subj.load(agent.nodeId), LoadReportSchema);
      const report = await resumed.waitFor((r) => (r.tools['echo/echo']?.completed ?? 0) >= 2);
      assert.equal(report.nodeId, agent.nodeId);
      resumed.stop();
    } finally {
      await agent.stop();
      await lateNc?.close();
      await late.dispose();
    }
  });
});

describe('tool list changes', () => {
  test('a tools/list_changed re-announces the node with the new digest', async () => {
    const module = fixture('dynamicTools.ts');
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'dynamic', module }] });
    try {
      await view.waitForNode(agent.nodeId);
      const before = view.node(agent.nodeId)!.record.servers[0]!;
      assert.equal(before.toolCount, 1);
      const { addSecondTool } = (await import(module)) as { addSecondTool: () => void };
      addSecondTool();
      const afterChange = (await view.waitForNode(agent.nodeId, (n) => n.record.servers[0]?.toolCount === 2)).record.servers[0]!;
      assert.notEqual(afterChange.toolDigest, before.toolDigest);
      assert.deepEqual(agent.servers[0], afterChange);
    } finally {
      await agent.stop();
    }
  });
});

describe('start-up errors', () => {
  const start = (module: string, extra: Record<string, unknown> = {}) =>
    startAgent({ nodeId: 'bad-module', natsUrl: nats.url, servers: [{ name: 'bad', module, ...extra }], logger: quiet });

  test('an exported SDK server instance is refused: a factory is needed', async () => {
    await assert.rejects(start(fixture('sdkInstance.ts')), /SDK server instance.*export a factory/);
  });

  test('a module without a hostable export names what it exports', async () => {
    await assert.rejects(start(fixture('notAServer.ts')), /export "default" is number/);
    await assert.rejects(start(fixture('notAServer.ts'), { exportName: 'nope' }), /has no export "nope" \(exports: alsoNot, default\)/);
  });

  test('a missing file or package is reported with its name', async () => {
    await assert.rejects(start('./does/not/exist.js'), /server "bad" \(module \.\/does\/not\/exist\.js\): file .* does not exist/);
    await assert.rejects(start('@flotilla/no-such-package'), /server "bad".*cannot import/);
  });

  test('invalid options are refused before anything starts', async () => {
    await assert.rejects(startAgent({ nodeId: 'has space', natsUrl: nats.url, servers: [], logger: quiet }), /invalid agent options: nodeId: .*servers: host at least one server/);
  });

  test('a node id already held by a live agent fails the start', async () => {
    // Listening before the first agent starts: its own `joined` may come just after it says ready.
    const events = new CollectedSubject(nc, subj.events, NodeEventSchema);
    await nc.flush(); // the subscription is on the server before the agent can publish
    const { agent } = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }] });
    try {
      const original = await view.waitForNode(agent.nodeId);
      await events.waitFor((e) => e.nodeId === agent.nodeId && e.type === 'joined');
      const heardBefore = events.values.length;
      await assert.rejects(
        startAgent({ nodeId: agent.nodeId, natsUrl: nats.url, servers: [{ name: 'echo', module: '@flotilla/examples/echo' }], logger: quiet }),
        /already registered by another live agent/,
      );
      // The failed start neither withdrew the first agent's record nor announced that the node left:
      // a marker published after it returns is received after anything it sent.
      const marker = { v: PROTOCOL_VERSION, type: 'joined' as const, nodeId: 'marker', at: Date.now() };
      nc.publish(subj.events, encodeJson(marker));
      await events.waitFor((e) => e.nodeId === 'marker');
      assert.deepEqual(events.values.slice(heardBefore).filter((e) => e.nodeId === agent.nodeId), []);
      assert.equal(view.node(agent.nodeId)?.record.instanceId, original.record.instanceId);
      assert.equal(view.hasVanished(agent.nodeId), false);
    } finally {
      events.stop();
      await agent.stop();
    }
  });
});
