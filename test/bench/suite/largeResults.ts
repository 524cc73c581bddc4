/**
 * Large results: a small request whose answer is `bytes` of text (the `sdkEcho` example's `repeat`),
 * sequential calls per target, interleaved in rounds; latency, and the CPU the hop's process spent per
 * call. What a router spends here over an echo of a few bytes is what it does per byte of a result.
 */
import { performance } from 'node:perf_hooks';
import { summarize, type LatencySummary } from '../stats.js';
import type { BenchTarget } from './BenchTargets.js';
import { processCpuMs } from './processCpu.js';
import { RawMcpSession } from './RawMcpClient.js';

/** One target's figures. */
export interface LargeResultPoint {
  target: string;
  bytes: number;
  latency: LatencySummary;
  /** CPU of the hop's process per call, µs. */
  cpuUsPerCall: number;
}

/** Runs `calls` calls per target (each answered with `bytes` of text), in `rounds` interleaved rounds. */
export async function largeResults(targets: BenchTarget[], bytes: number, calls: number, rounds = 3): Promise<LargeResultPoint[]> {
  const sessions = await Promise.all(targets.map((t) => RawMcpSession.open(t.url, t.headers)));
  const samples = targets.map((): number[] => []);
  const cpuMs = targets.map(() => 0);
  const args = { text: 'x', repeat: bytes };
  try {
    for (const [i, s] of sessions.entries()) for (let n = 0; n < 20; n++) await s.call(targets[i]!.tool, args);
    for (let round = 0; round < rounds; round++) {
      for (const [i, s] of sessions.entries()) {
        const cpuBefore = processCpuMs(targets[i]!.pid);
        for (let n = 0; n < Math.ceil(calls / rounds); n++) {
          const t0 = performance.now();
          await s.call(targets[i]!.tool, args);
          samples[i]!.push(performance.now() - t0);
        }
        cpuMs[i]! += processCpuMs(targets[i]!.pid) - cpuBefore;
      }
    }
  } finally {
    await Promise.allSettled(sessions.map((s) => s.close()));
  }
  return targets.map((t, i) => ({ target: t.name, bytes, latency: summarize(samples[i]!), cpuUsPerCall: (cpuMs[i]! * 1000) / samples[i]!.length }));
}
