/** Sequential latency: one session per target, calls one at a time, the targets interleaved in rounds. */
import { performance } from 'node:perf_hooks';
import { summarize, type LatencySummary } from '../stats.js';
import type { BenchTarget } from './BenchTargets.js';
import { RawMcpSession } from './RawMcpClient.js';

/** Latency of each target, by target name. */
export type SequentialResult = Record<string, LatencySummary>;

/** Runs `calls` sequential calls per target after `warmup`, interleaved in `rounds` so noise hits all alike. */
export async function sequentialLatency(targets: BenchTarget[], calls: number, warmup: number, rounds = 4): Promise<SequentialResult> {
  const sessions = await Promise.all(targets.map((t) => RawMcpSession.open(t.url, t.headers)));
  const samples = targets.map((): number[] => []);
  try {
    for (const [i, s] of sessions.entries()) for (let n = 0; n < warmup; n++) await s.call(targets[i]!.tool, { text: 'warm' });
    for (let round = 0; round < rounds; round++) {
      for (const [i, s] of sessions.entries()) {
        for (let n = 0; n < Math.ceil(calls / rounds); n++) {
          const t0 = performance.now();
          await s.call(targets[i]!.tool, { text: `m${n}` });
          samples[i]!.push(performance.now() - t0);
        }
      }
    }
  } finally {
    await Promise.allSettled(sessions.map((s) => s.close()));
  }
  return Object.fromEntries(targets.map((t, i) => [t.name, summarize(samples[i]!)]));
}
