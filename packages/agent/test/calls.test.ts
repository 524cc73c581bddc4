/**
 * Calls through the agent: load and progress reports on NATS, cancellation, admission control (busy),
 * deadlines, a client that drops its connection, and call ids on server-to-client messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FlotillaErrorCode, LoadReportSchema, META_CALL_ID, META_DEADLINE, ProgressReportSchema, subjects } from '@flotilla/protocol';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { closeClient, connectClient, startTestAgent, waitUntil, type TestAgent } from './support/agentFixture.js';
import { CollectedSubject } from './support/natsSubscription.js';

const SLOW = fileURLToPath(new URL('../../examples/src/slow.ts', import.meta.url));
const INTERACTIVE = fileURLToPath(new URL('../../examples/src/interactive.ts', import.meta.url));
const subj = subjects('flotilla');

let nats: NatsServerProcess;
let nc: NatsConnection;
let main: TestAgent;
let small: TestAgent;

interface SlowStatus {
  running: number;
  completed: number;
  cancelled: number;
  cancelledCallIds: string[];
}

async function slowStatus(client: Client): Promise<SlowStatus> {
  const r = (await client.callTool({ name: 'status', arguments: {} })) as CallToolResult;
  return r.structuredContent as unknown as SlowStatus;
}

function load(t: TestAgent): { inflight: number; queued: number } {
  return t.agent.health().load as { inflight: number; queued: number };
}

/** Starts a call and swallows its eventual rejection (tests look at it through `outcome`). */
function startCall(client: Client, args: Record<string, unknown>, meta: Record<string, unknown>, signal?: AbortSignal) {
  const promise = client.callTool({ name: 'work', arguments: args, _meta: meta }, undefined, { ...(signal ? { signal } : {}), timeout: 120_000 });
  const outcome = promise.then(
    (r) => ({ ok: true as const, result: r }),
    (e: unknown) => ({ ok: false as const, error: e }),
  );
  return { outcome };
}

before(async () => {
  nats = await NatsServerProcess.start();
  nc = await connect({ servers: nats.url });
  main = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'slow', module: SLOW }, { name: 'interactive', module: INTERACTIVE }, { name: 'echo', module: '@flotilla/examples/echo' }] });
  small = await startTestAgent({ natsUrl: nats.url, servers: [{ name: 'slow', module: SLOW }], capacity: 1, maxQueue: 1 });
});

after(async () => {
  await main?.agent.stop();
  await small?.agent.stop();
  await nc?.close();
  await nats?.dispose();
});

describe('reports on NATS', () => {
  test('load reports are published, valid, and carry per-tool EWMA latency', async () => {
    const loads = new CollectedSubject(nc, subj.load(main.agent.nodeId), LoadReportSchema);
    const client = await connectClient(main.agent, 'echo');
    const slow = await connectClient(main.agent, 'slow');
    try {
      await loads.waitFor(() => true);
      await client.callTool({ name: 'echo', arguments: { text: 'x' } });
      const report = await loads.waitFor((r) => (r.tools['echo/echo']?.completed ?? 0) >= 1);
      assert.equal(report.nodeId, main.agent.nodeId);
      assert.equal(report.capacity, 16);
      assert.equal(report.draining, false);
      // The EWMA is the measured call duration: the first sample sets it, so one call of slow/work that
      // sleeps 3 × 100 ms reads as at least that, and at most what the call took as the client saw it.
      assert.equal(report.tools['slow/work'], undefined, 'slow/work not called yet');
      const startedAt = performance.now();
      await slow.callTool({ name: 'work', arguments: { steps: 3, stepMs: 100 } });
      const clientMs = performance.now() - startedAt;
      const timed = await loads.waitFor((r) => (r.tools['slow/work']?.completed ?? 0) >= 1);
      assert.equal(timed.tools['slow/work']!.completed, 1);
      const { ewmaMs } = timed.tools['slow/work']!;
      assert.ok(ewmaMs >= 295 && ewmaMs <= clientMs + 0.1, `EWMA ${ewmaMs} ms for a 300 ms call the client saw take ${clientMs.toFixed(1)} ms`);
      await loads.waitFor((r) => r.seq > timed.seq);
      const seqs = loads.values.map((r) => r.seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'seq is monotonic');
      assert.deepEqual(loads.errors, []);
    } finally {
      loads.stop();
      await closeClient(client);
      await closeClient(slow);
    }
  });

  test('progress reports carry the call id, tool and latest progress while work runs', async () => {
    const progress = new CollectedSubject(nc, subj.progress(main.agent.nodeId), ProgressReportSchema);
    const client = await connectClient(main.agent, 'slow');
    try {
      const seen: number[] = [];
      const result = await client.callTool({ name: 'work', arguments: { steps: 5, stepMs: 20 }, _meta: { [META_CALL_ID]: 'call-progress-1' } }, undefined, {
        onprogress: (p) => seen.push(p.progress),
      });
      assert.equal(result.isError, undefined);
      assert.deepEqual(seen, [1, 2, 3, 4, 5]);
      const report = await progress.waitFor((r) => r.calls.some((c) => c.callId === 'call-progress-1'));
      const call = report.calls.find((c) => c.callId === 'call-progress-1')!;
      assert.equal(call.server, 'slow');
      assert.equal(call.tool, 'work');
      assert.equal(call.total, 5);
      assert.ok(call.progress >= 1 && call.progress <= 5);
      assert.deepEqual(progress.errors, []);
    } finally {
      progress.stop();
      await closeClient(client);
    }
  });
});

describe('cancellation and admission', () => {
  test('cancelling a running call stops the tool on the node and frees its slot', async () => {
    const client = await connectClient(main.agent, 'slow');
    try {
      const controller = new AbortController();
      let progressed = false;
      const call = client.callTool({ name: 'work', arguments: { steps: 1000, stepMs: 50 }, _meta: { [META_CALL_ID]: 'call-cancel-1' } }, undefined, {
        signal: controller.signal,
        onprogress: () => {
          progressed = true;
        },
      });
      const outcome = call.then(() => 'answered', () => 'rejected');
      await waitUntil(() => progressed, 20_000, 'first progress');
      controller.abort('test cancels');
      assert.equal(await outcome, 'rejected');
      await waitUntil(async () => (await slowStatus(client)).cancelledCallIds.includes('call-cancel-1'), 20_000, 'work to stop');
      await waitUntil(() => load(main).inflight === 0, 20_000, 'slot to be freed');
    } finally {
      await closeClient(client);
    }
  });

  test('a full node (capacity and queue) answers NodeBusy at once; a cancelled queued call never runs', async () => {
    const client = await connectClient(small.agent, 'slow');
    // `status` is a tool call too, which the full node would refuse: ask the other agent (same module, same counters).
    const observer = await connectClient(main.agent, 'slow');
    try {
      const running = new AbortController();
      const queued = new AbortController();
      const first = startCall(client, { steps: 1000, stepMs: 50 }, { [META_CALL_ID]: 'busy-running' }, running.signal);
      await waitUntil(() => load(small).inflight === 1, 20_000, 'first call running');
      const second = startCall(client, { steps: 1, stepMs: 1 }, { [META_CALL_ID]: 'busy-queued' }, queued.signal);
      await waitUntil(() => load(small).queued === 1, 20_000, 'second call queued');

      const third = await startCall(client, { steps: 1, stepMs: 1 }, { [META_CALL_ID]: 'busy-refused' }).outcome;
      assert.equal(third.ok, false);
      const error = (third as { error: unknown }).error;
      assert.ok(error instanceof McpError);
      assert.equal(error.code, FlotillaErrorCode.NodeBusy);
      assert.match(error.message, /busy/);

      const before = await slowStatus(observer);
      queued.abort('no longer needed');
      assert.equal((await second.outcome).ok, false);
      await waitUntil(() => load(small).queued === 0, 20_000, 'queued call removed');
      running.abort('done');
      await first.outcome;
      await waitUntil(() => load(small).inflight === 0, 20_000, 'running call cancelled');
      const after = await slowStatus(observer);
      // The queued call was removed before it ran: only the running one was cancelled in the server.
      assert.equal(after.cancelled - before.cancelled, 1);
      assert.ok(after.cancelledCallIds.includes('busy-running'));
      assert.ok(!after.cancelledCallIds.includes('busy-queued'));
    } finally {
      await closeClient(client);
      await closeClient(observer);
    }
  });

  test('a passed deadline cancels a running call and fails a queued one with DeadlineExceeded', async () => {
    const client = await connectClient(small.agent, 'slow');
    try {
      const runningDeadline = await startCall(client, { steps: 1000, stepMs: 50 }, { [META_CALL_ID]: 'deadline-running', [META_DEADLINE]: Date.now() + 300 }).outcome;
      assert.equal(runningDeadline.ok, false);
      const e1 = (runningDeadline as { error: unknown }).error;
      assert.ok(e1 instanceof McpError);
      assert.equal(e1.code, FlotillaErrorCode.DeadlineExceeded);
      assert.match(e1.message, /cancelled/);
      await waitUntil(async () => (await slowStatus(client)).cancelledCallIds.includes('deadline-running'), 20_000, 'work to stop at its deadline');

      const blocker = new AbortController();
      const first = startCall(client, { steps: 1000, stepMs: 50 }, { [META_CALL_ID]: 'deadline-blocker' }, blocker.signal);
      await waitUntil(() => load(small).inflight === 1, 20_000, 'blocker running');
      const waiting = await startCall(client, { steps: 1, stepMs: 1 }, { [META_CALL_ID]: 'deadline-queued', [META_DEADLINE]: Date.now() + 200 }).outcome;
      assert.equal(waiting.ok, false);
      const e2 = (waiting as { error: unknown }).error;
      assert.ok(e2 instanceof McpError);
      assert.equal(e2.code, FlotillaErrorCode.DeadlineExceeded);
      assert.match(e2.message, /never ran/);
      blocker.abort('done');
      await first.outcome;
      await waitUntil(() => load(small).inflight === 0 && load(small).queued === 0, 20_000, 'node idle');
    } finally {
      await closeClient(client);
    }
  });

  test('a client that drops its HTTP connection gets its call cancelled on the node', async () => {
    const client = await connectClient(main.agent, 'slow');
    try {
      const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
      const controller = new AbortController();
      const response = fetch(`${main.agent.url}/mcp/slow`, {
        method: 'POST',
        signal: controller.signal,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'raw-1', method: 'tools/call', params: { name: 'work', arguments: { steps: 1000, stepMs: 50 }, _meta: { [META_CALL_ID]: 'dropped-1' } } }),
      }).catch(() => undefined);
      await waitUntil(() => load(main).inflight === 1, 20_000, 'raw call running');
      controller.abort();
      await response;
      await waitUntil(async () => (await slowStatus(client)).cancelledCallIds.includes('dropped-1'), 20_000, 'dropped call to be cancelled');
      await waitUntil(() => load(main).inflight === 0, 20_000, 'slot freed');
    } finally {
      await closeClient(client);
    }
  });
});

describe('server-to-client messages of a call carry its call id', () => {
  test('sampling, elicitation and logging are tagged with _meta["flotilla/callId"]', async () => {
    const client = await connectClient(main.agent, 'interactive', { sampling: {}, elicitation: { form: {} } });
    try {
      const samplingMeta: unknown[] = [];
      const elicitMeta: unknown[] = [];
      const logMeta: unknown[] = [];
      client.setRequestHandler(CreateMessageRequestSchema, (req) => {
        samplingMeta.push(req.params._meta?.[META_CALL_ID]);
        return { role: 'assistant', model: 'test-model', content: { type: 'text', text: 'forty-two' } };
      });
      client.setRequestHandler(ElicitRequestSchema, (req) => {
        elicitMeta.push(req.params._meta?.[META_CALL_ID]);
        return { action: 'accept', content: { name: 'Ada' } };
      });
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logMeta.push(n.params._meta?.[META_CALL_ID]);
      });

      const sampled = await client.callTool({ name: 'ask_model', arguments: { question: 'meaning of life?' }, _meta: { [META_CALL_ID]: 'call-sampling' } });
      assert.deepEqual(sampled.content, [{ type: 'text', text: 'model (test-model) says: forty-two' }]);
      assert.deepEqual(samplingMeta, ['call-sampling']);

      const greeted = await client.callTool({ name: 'ask_user', arguments: {}, _meta: { [META_CALL_ID]: 'call-elicit' } });
      assert.deepEqual(greeted.content, [{ type: 'text', text: 'hello, Ada' }]);
      assert.deepEqual(elicitMeta, ['call-elicit']);

      await client.callTool({ name: 'chatty', arguments: { count: 3 }, _meta: { [META_CALL_ID]: 'call-logging' } });
      assert.deepEqual(logMeta, ['call-logging', 'call-logging', 'call-logging']);

      // Without a router-assigned id the agent's own id is used: <session>:<request id>.
      logMeta.length = 0;
      await client.callTool({ name: 'chatty', arguments: { count: 1 } });
      const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
      assert.match(String(logMeta[0]), new RegExp(`^${sessionId}:\\d+$`));
    } finally {
      await closeClient(client);
    }
  });
});
