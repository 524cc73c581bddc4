/**
 * Concurrency sweep: `clients` sessions each calling back to back for a fixed time, per target; calls/s,
 * latency, and the CPU the target's own process spent per call (from its kernel counters), which gives
 * calls/s per core of that hop.
 */
import { performance } from 'node:perf_hooks';
import { summarize, type LatencySummary } from '../stats.js';
import type { BenchTarget } from './BenchTargets.js';
import { processCpuMs } from './processCpu.js';
import { RawMcpSession } from './RawMcpClient.js';

/** One target at one concurrency. */
export interface SweepPoint {
  target: string;
  clients: number;
  calls: number;
  errors: number;
  callsPerS: number;
  latency: LatencySummary;
  /** CPU of each measured process per call, µs, by process label. */
  cpuUsPerCall: Record<string, number>;
}

/** Runs `clients` sessions against `target` for `seconds`; `cpuOf` names the processes whose CPU to report. */
export async function sweepPoint(target: BenchTarget, clients: number, seconds: number, cpuOf: Record<string, number>): Promise<SweepPoint> {
  const sessions = await Promise.all(Array.from({ length: clients }, () => RawMcpSession.open(target.url, target.headers)));
  try {
    for (const s of sessions) await s.call(target.tool, { text: 'warm' });
    const samples: number[] = [];
    let errors = 0;
    const cpuBefore = Object.fromEntries(Object.entries(cpuOf).map(([k, pid]) => [k, processCpuMs(pid)]));
    const started = performance.now();
    const until = started + seconds * 1000;
    await Promise.all(
      sessions.map(async (s, i) => {
        for (let n = 0; performance.now() < until; n++) {
          const t0 = performance.now();
          try {
            await s.call(target.tool, { text: `c${i}-${n}` });
            samples.push(performance.now() - t0);
          } catch {
            errors++;
          }
        }
      }),
    );
    const elapsedS = (performance.now() - started) / 1000;
    const cpuUsPerCall = Object.fromEntries(Object.entries(cpuOf).map(([k, pid]) => [k, ((processCpuMs(pid) - cpuBefore[k]!) * 1000) / Math.max(1, samples.length)]));
    return { target: target.name, clients, calls: samples.length, errors, callsPerS: samples.length / elapsedS, latency: summarize(samples), cpuUsPerCall };
  } finally {
    await Promise.allSettled(sessions.map((s) => s.close()));
  }
}

/**
 * Several rounds of one target at one concurrency as one point (the rounds interleaved with the other
 * targets', so machine noise hits all alike): calls and errors summed, calls/s averaged, CPU per call over
 * all calls, latency of the round with the median calls/s.
 */
export function mergeRounds(rounds: readonly SweepPoint[]): SweepPoint {
  const calls = rounds.reduce((n, r) => n + r.calls, 0);
  const median = [...rounds].sort((a, b) => a.callsPerS - b.callsPerS)[Math.floor(rounds.length / 2)]!;
  const cpuUsPerCall: Record<string, number> = {};
  for (const k of Object.keys(rounds[0]!.cpuUsPerCall)) cpuUsPerCall[k] = rounds.reduce((s, r) => s + r.cpuUsPerCall[k]! * r.calls, 0) / Math.max(1, calls);
  return {
    target: rounds[0]!.target,
    clients: rounds[0]!.clients,
    calls,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    callsPerS: rounds.reduce((s, r) => s + r.callsPerS, 0) / rounds.length,
    latency: median.latency,
    cpuUsPerCall,
  };
}
