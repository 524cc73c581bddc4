/**
 * Benchmark: balancing strategies on a heterogeneous fleet, side by side in one run.
 *
 * Three agents host the `slow` example; one of them is 5x slower (SLOW_EXAMPLE_FACTOR=5). For each
 * strategy, fresh agents and a fresh router are started (no strategy inherits statistics another one
 * warmed up), an unmeasured warm-up runs (so strategies that learn latencies start informed, as in steady
 * state), then the same closed-loop workload: `workers` concurrent clients, each calling `slow_work` with
 * a mix of short calls (1 step) and long calls that report progress (many steps). We report p50/p99
 * latency (all, short, long), throughput, and how many measured calls ran on the slow node.
 *
 * The strategies named in --sticky-strategies run once more with the server announced `--affinity
 * slow=sticky`: each client's calls then stay on the node its first call went to, which is the price of
 * keeping a stateful server's session state in one place (docs/sessions.md).
 *
 * Usage: node --import tsx test/bench/balancing.ts [--calls 600 --workers 12 --warmup 120 --capacity 16]
 * (after `bash scripts/pnpm.sh -s build`), or `npm run bench:balancing`.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { eventually } from '../harness/eventually.js';
import { ms, summarize } from './stats.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '600' },
    workers: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '120' },
    capacity: { type: 'string', default: '16' },
    'long-share': { type: 'string', default: '0.2' },
    strategies: { type: 'string', default: 'round-robin,least-outstanding,p2c-ewma,progress-aware' },
    'sticky-strategies': { type: 'string', default: 'progress-aware' },
    seed: { type: 'string', default: '42' },
  },
});
const totalCalls = Number(values.calls);
const workers = Number(values.workers);
const warmupCalls = Number(values.warmup);
const capacity = Number(values.capacity);
const longShare = Number(values['long-share']);
const strategies = values.strategies.split(',');
const runs = [
  ...strategies.map((strategy) => ({ strategy, sticky: false })),
  ...values['sticky-strategies'].split(',').filter(Boolean).map((strategy) => ({ strategy, sticky: true })),
];

const SHORT = { steps: 1, stepMs: 20 };
const LONG = { steps: 20, stepMs: 40 };
const NODES = [
  { id: 'fast-1', factor: '1' },
  { id: 'fast-2', factor: '1' },
  { id: 'slow-5x', factor: '5' },
];

/** Deterministic workload: the same sequence of call shapes for every strategy. */
function workload(seed: number, n: number): Array<{ long: boolean }> {
  let x = seed >>> 0;
  const next = (): number => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, () => ({ long: next() < longShare }));
}

interface Sample { long: boolean; ms: number; ok: boolean }

async function connect(url: string): Promise<{ client: Client; close: () => Promise<void> }> {
  const client = new Client({ name: 'bench', version: '0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, close: async () => { await transport.terminateSession().catch(() => {}); await client.close(); } };
}

/** Runs `calls` through `workers` concurrent clients, each taking the next call when its last one ends. */
async function closedLoop(routerUrl: string, calls: Array<{ long: boolean }>): Promise<{ samples: Sample[]; seconds: number }> {
  const clients = await Promise.all(Array.from({ length: workers }, () => connect(routerUrl)));
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async ({ client }) => {
      for (let i = next++; i < calls.length; i = next++) {
        const shape = calls[i]!;
        const start = performance.now();
        let ok = true;
        try {
          const r = await client.callTool({ name: 'slow_work', arguments: shape.long ? LONG : SHORT }, undefined, {
            onprogress: () => {},
            resetTimeoutOnProgress: true,
            timeout: 120_000,
          });
          ok = !r.isError;
        } catch {
          ok = false;
        }
        samples.push({ long: shape.long, ms: performance.now() - start, ok });
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  return { samples, seconds };
}

/** `slow_work` calls completed so far by the agent at `agentUrl`. */
async function completedOn(agentUrl: string): Promise<number> {
  const c = await connect(`${agentUrl}/mcp/slow`);
  try {
    return ((await c.client.callTool({ name: 'status', arguments: {} })).structuredContent as { completed: number }).completed;
  } finally {
    await c.close();
  }
}

const nats = await NatsServerProcess.start();
const rows: string[][] = [];
const json: Record<string, unknown> = {};
try {
  const warmup = workload(Number(values.seed) + 1, warmupCalls);
  const calls = workload(Number(values.seed), totalCalls);
  for (const { strategy, sticky } of runs) {
    const label = sticky ? `${strategy} + sticky` : strategy;
    const affinity = sticky ? ['--affinity', 'slow=sticky'] : [];
    const agents = NODES.map(({ id, factor }) => ({
      id,
      process: FlotillaProcess.spawn(id, ['agent', '--node-id', id, '--server', 'slow=@flotilla/examples/slow', '--nats', nats.url, '--port', '0', '--capacity', String(capacity), ...affinity], {
        SLOW_EXAMPLE_FACTOR: factor,
      }),
    }));
    const router = FlotillaProcess.spawn(`router-${label}`, ['router', '--nats', nats.url, '--port', '0', '--strategy', strategy], {});
    try {
      const agentUrls = new Map(await Promise.all(agents.map(async (a) => [a.id, String((await a.process.ready()).url)] as const)));
      const base = String((await router.ready()).url).replace(/\/mcp$/, '');
      await eventually(async () => {
        const body = (await (await fetch(`${base}/api/v1/tools`)).json()) as { tools: Array<{ name: string; replicas: unknown[] }> };
        if (body.tools.find((t) => t.name === 'slow_work')?.replicas.length !== NODES.length) throw new Error('waiting for 3 replicas');
      }, 30_000);
      await closedLoop(`${base}/mcp`, warmup);
      const slowUrl = agentUrls.get('slow-5x')!;
      const slowBefore = await completedOn(slowUrl);
      const { samples, seconds } = await closedLoop(`${base}/mcp`, calls);
      const onSlow = (await completedOn(slowUrl)) - slowBefore;
      const all = summarize(samples.map((s) => s.ms));
      const short = summarize(samples.filter((s) => !s.long).map((s) => s.ms));
      const long = summarize(samples.filter((s) => s.long).map((s) => s.ms));
      const failed = samples.filter((s) => !s.ok).length;
      rows.push([label, ms(all.p50), ms(all.p99), ms(short.p50), ms(short.p99), ms(long.p50), ms(long.p99), (samples.length / seconds).toFixed(1), String(onSlow), String(failed)]);
      json[label] = { all, short, long, throughput: samples.length / seconds, onSlowNode: onSlow, failed };
    } finally {
      await router.stop();
      await Promise.all(agents.map((a) => a.process.stop()));
    }
  }
} finally {
  await nats.dispose();
}
const header = ['strategy', 'p50 ms', 'p99 ms', 'short p50', 'short p99', 'long p50', 'long p99', 'calls/s', 'on slow', 'failed'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
process.stdout.write(
  `\n${totalCalls} calls per strategy after ${warmupCalls} warm-up calls, ${workers} concurrent clients, ${Math.round(longShare * 100)}% long calls ` +
    `(${LONG.steps}x${LONG.stepMs} ms with progress), short ${SHORT.steps}x${SHORT.stepMs} ms; nodes (capacity ${capacity}): fast-1, fast-2, slow-5x; ` +
    `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}\n`,
);
for (const r of [header, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
process.stdout.write(`${JSON.stringify(json)}\n`);
