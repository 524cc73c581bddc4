/**
 * Benchmark: balancing strategies on a heterogeneous fleet, side by side in one run.
 *
 * Three agents host the `slow` example; one of them is 5x slower (SLOW_EXAMPLE_FACTOR=5). For each
 * strategy a fresh router is started and the same closed-loop workload runs through it: `workers`
 * concurrent clients, each calling `slow_work` with a mix of short calls (1 step) and long calls that
 * report progress (many steps). We report p50/p99 latency (all, short, long) and throughput per strategy.
 * Usage: npm run bench:balancing [-- --calls 600 --workers 12]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
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
    'long-share': { type: 'string', default: '0.2' },
    strategies: { type: 'string', default: 'round-robin,least-outstanding,p2c-ewma,progress-aware' },
    seed: { type: 'string', default: '42' },
  },
});
const totalCalls = Number(values.calls);
const workers = Number(values.workers);
const longShare = Number(values['long-share']);
const strategies = values.strategies.split(',');

/** Deterministic workload: the same sequence of call shapes for every strategy. */
function workload(seed: number): Array<{ long: boolean }> {
  let x = seed >>> 0;
  const next = (): number => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: totalCalls }, () => ({ long: next() < longShare }));
}
const SHORT = { steps: 1, stepMs: 20 };
const LONG = { steps: 20, stepMs: 40 };

interface Sample { long: boolean; ms: number; ok: boolean }

async function runStrategy(routerUrl: string, calls: Array<{ long: boolean }>): Promise<{ samples: Sample[]; seconds: number }> {
  const clients = await Promise.all(
    Array.from({ length: workers }, async () => {
      const c = new Client({ name: 'bench', version: '0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(routerUrl)));
      return c;
    }),
  );
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (client) => {
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

const nats = await NatsServerProcess.start();
const agents = [
  { id: 'fast-1', factor: '1' },
  { id: 'fast-2', factor: '1' },
  { id: 'slow-5x', factor: '5' },
].map(({ id, factor }) =>
  FlotillaProcess.spawn(id, ['agent', '--node-id', id, '--server', 'slow=@flotilla/examples/slow', '--nats', nats.url, '--port', '0', '--capacity', '16'], {
    
    SLOW_EXAMPLE_FACTOR: factor,
  }),
);
const rows: string[][] = [];
const json: Record<string, unknown> = {};
try {
  await Promise.all(agents.map((a) => a.ready()));
  const calls = workload(Number(values.seed));
  for (const strategy of strategies) {
    const router = FlotillaProcess.spawn(`router-${strategy}`, ['router', '--nats', nats.url, '--port', '0', '--strategy', strategy], {});
    try {
      const base = String((await router.ready()).url).replace(/\/mcp$/, '');
      await eventually(async () => {
        const res = await fetch(`${base}/api/v1/nodes`);
        const body = (await res.json()) as { nodes: unknown[] };
        if (body.nodes.length !== 3) throw new Error('waiting for 3 nodes');
      }, 30_000);
      // Let load reports arrive so report-driven strategies start informed, as they would in steady state.
      await new Promise((r) => setTimeout(r, 1500));
      const { samples, seconds } = await runStrategy(`${base}/mcp`, calls);
      const all = summarize(samples.map((s) => s.ms));
      const short = summarize(samples.filter((s) => !s.long).map((s) => s.ms));
      const long = summarize(samples.filter((s) => s.long).map((s) => s.ms));
      const failed = samples.filter((s) => !s.ok).length;
      rows.push([strategy, ms(all.p50), ms(all.p99), ms(short.p50), ms(short.p99), ms(long.p50), ms(long.p99), (samples.length / seconds).toFixed(1), String(failed)]);
      json[strategy] = { all, short, long, throughput: samples.length / seconds, failed };
    } finally {
      await router.stop();
    }
  }
} finally {
  await Promise.all(agents.map((a) => a.stop()));
  await nats.dispose();
}
const header = ['strategy', 'p50 ms', 'p99 ms', 'short p50', 'short p99', 'long p50', 'long p99', 'calls/s', 'failed'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
process.stdout.write(`\n${totalCalls} calls per strategy, ${workers} concurrent clients, ${Math.round(longShare * 100)}% long calls (${LONG.steps}x${LONG.stepMs} ms with progress), short ${SHORT.steps}x${SHORT.stepMs} ms; nodes: fast-1, fast-2, slow-5x\n`);
for (const r of [header, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
process.stdout.write(`${JSON.stringify(json)}\n`);
