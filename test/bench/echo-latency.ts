/**
 * Benchmark: latency of sequential `echo` calls through the router versus straight to the agent, measured
 * in one run on the same machine so the ratio is meaningful even when absolute numbers are noisy. With
 * `--baseline <path to another build's packages/cli/dist/bin.js>`, a router of that build runs beside this
 * one on the same agent, interleaved, so two versions are compared in one run.
 * Usage: npm run bench [-- --calls 2000] [-- --baseline ../old/packages/cli/dist/bin.js]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { ms, summarize } from './stats.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '2000' }, warmup: { type: 'string', default: '200' }, baseline: { type: 'string' } } });
const calls = Number(values.calls);
const warmup = Number(values.warmup);

async function series(url: string, tool: string, n: number): Promise<number[]> {
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    for (let i = 0; i < warmup; i++) await client.callTool({ name: tool, arguments: { text: 'warm' } });
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await client.callTool({ name: tool, arguments: { text: `m${i}` } });
      out.push(performance.now() - t0);
      if (r.isError) throw new Error(`call ${i} failed: ${JSON.stringify(r.content)}`);
    }
    return out;
  } finally {
    await client.close();
  }
}

const nats = await NatsServerProcess.start();
const agent = FlotillaProcess.spawn('agent', ['agent', '--node-id', 'bench-1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0'], {});
const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0'], {});
const baseline = values.baseline ? FlotillaProcess.spawn('baseline-router', ['router', '--nats', nats.url, '--port', '0'], {}, values.baseline) : undefined;

/** Waits until a router's catalog has the tool. */
async function waitForEcho(routerUrl: string): Promise<void> {
  const probe = new Client({ name: 'probe', version: '0' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(routerUrl)));
  for (let i = 0; ; i++) {
    const tools = await probe.listTools();
    if (tools.tools.some((t) => t.name === 'echo_echo')) break;
    if (i > 200) throw new Error('router never listed echo_echo');
    await new Promise((r) => setTimeout(r, 100));
  }
  await probe.close();
}

try {
  const agentUrl = String((await agent.ready()).url);
  const routerUrl = String((await router.ready()).url);
  const baselineUrl = baseline ? String((await baseline.ready()).url) : undefined;
  await waitForEcho(routerUrl);
  if (baselineUrl) await waitForEcho(baselineUrl);

  // Interleave the series in halves so machine noise hits all alike.
  const direct: number[] = [];
  const routed: number[] = [];
  const old: number[] = [];
  const half = Math.floor(calls / 2);
  for (const round of [0, 1]) {
    const n = round === 0 ? half : calls - half;
    direct.push(...(await series(`${agentUrl}/mcp/echo`, 'echo', n)));
    routed.push(...(await series(routerUrl, 'echo_echo', n)));
    if (baselineUrl) old.push(...(await series(baselineUrl, 'echo_echo', n)));
  }
  const d = summarize(direct);
  const r = summarize(routed);
  const rows = [
    ['series', 'calls', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
    ['direct to agent', String(d.n), ms(d.p50), ms(d.p90), ms(d.p99), ms(d.mean)],
    ['through router', String(r.n), ms(r.p50), ms(r.p90), ms(r.p99), ms(r.mean)],
    ['ratio router/direct', '', (r.p50 / d.p50).toFixed(2), (r.p90 / d.p90).toFixed(2), (r.p99 / d.p99).toFixed(2), (r.mean / d.mean).toFixed(2)],
  ];
  if (baselineUrl) {
    const b = summarize(old);
    rows.push(['through baseline router', String(b.n), ms(b.p50), ms(b.p90), ms(b.p99), ms(b.mean)]);
    rows.push(['overhead router - direct', '', ms(r.p50 - d.p50), ms(r.p90 - d.p90), ms(r.p99 - d.p99), ms(r.mean - d.mean)]);
    rows.push(['overhead baseline - direct', '', ms(b.p50 - d.p50), ms(b.p90 - d.p90), ms(b.p99 - d.p99), ms(b.mean - d.mean)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  process.stdout.write(`\nSequential echo latency, ${calls} calls each (after ${warmup} warm-up calls)\n`);
  for (const row of rows) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
  process.stdout.write(`${JSON.stringify({ direct: d, routed: r, ratioP50: r.p50 / d.p50, ratioP99: r.p99 / d.p99 })}\n`);
} finally {
  await router.stop();
  await baseline?.stop();
  await agent.stop();
  await nats.dispose();
}

