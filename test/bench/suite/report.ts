/** Markdown tables of the benchmark suite's results. */
import { ms, type LatencySummary } from '../stats.js';
import type { CatalogScaleResult } from './catalogScale.js';
import type { SweepPoint } from './concurrencySweep.js';
import type { LargeResultPoint } from './largeResults.js';
import type { NodeDeathResult } from './nodeDeath.js';
import type { SequentialResult } from './sequentialLatency.js';

/** A titled markdown table. */
export interface Markdown {
  title: string;
  table: string;
}

function table(rows: string[][]): string {
  const [header, ...body] = rows;
  return [header!, header!.map(() => '---'), ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const signed = (v: number): string => (v < 0 ? `−${ms(-v)}` : `+${ms(v)}`);

/** Sequential latency of each target, and each hop's overhead over the path it is in front of (the row before it unless it says). */
export function latencyTable(r: SequentialResult, order: readonly { name: string; over?: string }[]): Markdown {
  const rows = [['path', 'calls', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'over', 'p50 added', 'p99 added']];
  let previous: { name: string; s: LatencySummary } | undefined;
  for (const { name, over } of order) {
    const s = r[name]!;
    const base = over !== undefined && r[over] ? { name: over, s: r[over]! } : previous;
    rows.push([name, String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.mean), base?.name ?? '', base ? signed(s.p50 - base.s.p50) : '', base ? signed(s.p99 - base.s.p99) : '']);
    previous = { name, s };
  }
  return { title: 'Sequential latency (one session per path, calls one at a time, paths interleaved)', table: table(rows) };
}

/** Calls/s, latency and CPU per call of each path at each concurrency. */
export function sweepTable(points: SweepPoint[]): Markdown {
  const rows = [['path', 'clients', 'calls/s', 'p50 ms', 'p99 ms', 'errors', 'CPU µs/call (process)', 'calls/s per core of the hop']];
  for (const p of points) {
    const cpu = Object.entries(p.cpuUsPerCall).map(([k, v]) => `${Math.round(v)} (${k})`).join(', ');
    const hop = Object.values(p.cpuUsPerCall)[0]!;
    rows.push([p.target, String(p.clients), Math.round(p.callsPerS).toString(), ms(p.latency.p50), ms(p.latency.p99), String(p.errors), cpu, Math.round(1e6 / hop).toString()]);
  }
  return { title: 'Concurrency sweep (each client a session calling back to back)', table: table(rows) };
}

/** Latency and CPU per call of answers of many bytes. */
export function largeResultsTable(points: LargeResultPoint[]): Markdown {
  const rows = [['path', 'result', 'p50 ms', 'p99 ms', 'CPU µs/call of the hop']];
  for (const p of points) rows.push([p.target, `${Math.round(p.bytes / 1024)} KiB`, ms(p.latency.p50), ms(p.latency.p99), Math.round(p.cpuUsPerCall).toString()]);
  return { title: 'Large results (a small request, a large answer; calls one at a time, paths interleaved)', table: table(rows) };
}

export function catalogTable(r: CatalogScaleResult): Markdown {
  const rows = [
    ['agents × tools', 'catalog complete after the fleet registered', 'tools/list (all pages) p50 / p99', 'router RSS before → after', 'router heap before → after'],
    [`${r.agents} × ${r.tools / r.agents}`, `${Math.round(r.catalogReadyMs)} ms`, `${ms(r.toolsList.p50)} / ${ms(r.toolsList.p99)} ms`, `${mb(r.routerBefore.rss)} → ${mb(r.routerAfter.rss)} MiB`, `${mb(r.routerBefore.heap)} → ${mb(r.routerAfter.heap)} MiB`],
  ];
  return { title: 'Catalog scale', table: table(rows) };
}

export function deathTable(r: NodeDeathResult): Markdown {
  const rows = [
    ['clients', 'last call placed on the dead node after the kill', 'calls around the kill', 'failed', 'slowest call'],
    [String(r.clients), `${Math.round(r.lastPlacementAfterKillMs)} ms`, String(r.callsAroundKill), String(r.failedCalls), `${ms(r.slowestCallMs)} ms`],
  ];
  return { title: "A node's death under load (kill -9, read-only echo calls)", table: table(rows) };
}
