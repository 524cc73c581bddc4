/**
 * Fairness at the router's front, against real processes (nats-server, one agent hosting echo and slow,
 * a `flotilla router` with its default limits): one session sends 1,000 slow calls at once; another
 * client's echo calls keep their normal latency, the flood beyond the session's queue is refused with
 * RateLimited (-32020, `retryAfterMs`), and the refusals are counted.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { connectClient, rawPost, until, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';

let nats: NatsServerProcess;
let router: FlotillaProcess;
let agent: FlotillaProcess;
let url: string;
let victim: TestClient;

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'flooder', version: '1' } } });

before(async () => {
  nats = await NatsServerProcess.start();
  router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0']);
  url = String((await router.ready(60_000)).url);
  agent = FlotillaProcess.spawn('f1', ['agent', '--node-id', 'f1', '--server', 'echo=@flotilla/examples/echo', '--server', 'slow=@flotilla/examples/slow', '--nats', nats.url, '--port', '0', '--grpc-port', '0']);
  await agent.ready(60_000);
  victim = await connectClient(url, 'victim');
  await until('the agent tools', async () => (await victim.client.listTools()).tools.some((t) => t.name === 'slow_work'), 60_000);
});

after(async () => {
  await victim?.close().catch(() => {});
  await Promise.all([router, agent].filter(Boolean).map((p) => p.stop()));
  await nats?.dispose();
});

async function echoLatencies(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await victim.client.callTool({ name: 'echo_echo', arguments: { text: `ping ${i}` } });
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

describe('fair queueing across clients', () => {
  it("one session's 1,000 slow calls do not delay another client's echo calls; the excess is refused with RateLimited", async () => {
    await echoLatencies(5); // warm up the victim's upstream session
    const baseline = await echoLatencies(10);
    const init = await rawPost(url, INIT);
    const sessionId = init.headers.get('mcp-session-id')!;
    const abort = new AbortController();
    let refused = 0;
    let retryAfterSeen = false;
    const floods = Array.from({ length: 10 }, async (_, b) => {
      const batch = Array.from({ length: 100 }, (_, i) => ({ jsonrpc: '2.0', id: b * 100 + i + 1, method: 'tools/call', params: { name: 'slow_work', arguments: { steps: 1, stepMs: 60_000 } } }));
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
          body: JSON.stringify(batch),
          signal: abort.signal,
        });
        const decoder = new TextDecoder();
        for await (const chunk of res.body!) {
          const text = decoder.decode(chunk as Uint8Array, { stream: true });
          refused += (text.match(/"code":-32020/g) ?? []).length;
          if (/"retryAfterMs":\d+/.test(text)) retryAfterSeen = true;
        }
      } catch {
        // aborted at the end
      }
    });
    try {
      // 8 run (the session's concurrency), 512 wait in its queue, the rest are refused at once.
      await until('the flood refused beyond its queue', () => refused >= 480, 60_000);
      assert.equal(refused, 480);
      assert.ok(retryAfterSeen, 'RateLimited errors carry retryAfterMs');
      const flooded = await echoLatencies(10);
      const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)]!;
      process.stderr.write(`# fairness: echo latency median ${median(baseline).toFixed(1)} ms before the flood, ${median(flooded).toFixed(1)} ms during it (max ${flooded.at(-1)!.toFixed(1)} ms); ${refused} flood calls refused\n`);
      assert.ok(median(flooded) < median(baseline) * 3 + 100, `median ${median(flooded)} ms during the flood vs ${median(baseline)} ms before`);
      assert.ok(flooded.at(-1)! < 2000, `slowest echo call during the flood took ${flooded.at(-1)} ms`);
      const metrics = await (await fetch(url.replace(/\/mcp$/, '/metrics'))).text();
      assert.match(metrics, /flotilla_router_rate_limited_total\{identity="anonymous",limit="client_queue"\} 480/);
    } finally {
      abort.abort();
      await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } }).catch(() => {});
      await Promise.all(floods);
    }
  });
});
