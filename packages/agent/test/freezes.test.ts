/**
 * Frozen time (SIGSTOP, a paused VM) is told apart from a busy event loop and left out of the agent's
 * latency statistics: the clock's rule on scripted time and CPU, then a real process stopped with SIGSTOP.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CallTracker } from '../src/calls/CallTracker.js';
import { ProcessFreezeClock, type FreezeClockSources } from '../src/health/ProcessFreezeClock.js';

/** Time and CPU a test moves by hand. */
function scriptedSources(): FreezeClockSources & { pass(ms: number, cpuMs?: number): void } {
  let now = 0;
  let cpu = 0;
  return {
    now: () => now,
    cpuMs: () => cpu,
    pass(ms, cpuMs = 0) {
      now += ms;
      cpu += cpuMs;
    },
  };
}

describe('ProcessFreezeClock', () => {
  it('counts a late tick in a stretch without CPU use as frozen, over the threshold only', () => {
    const sources = scriptedSources();
    const freezes: number[] = [];
    const clock = new ProcessFreezeClock({ intervalMs: 100, thresholdMs: 250, sources, onFreeze: (ms) => freezes.push(ms) });
    sources.pass(101);
    assert.equal(clock.frozenMs(), 0, 'a tick on time');
    sources.pass(300);
    assert.equal(clock.frozenMs(), 0, 'late by 200 ms: scheduling noise under the threshold');
    sources.pass(2100, 2000);
    assert.equal(clock.frozenMs(), 0, 'late by 2 s while burning 2 s of CPU: a busy event loop, not a freeze');
    sources.pass(2100, 600);
    assert.equal(clock.frozenMs(), 0, 'late by 2 s with 600 ms of CPU: a process starved by its host or CPU limit, slow for real');
    sources.pass(5100, 10);
    assert.equal(clock.frozenMs(), 5000, 'late by 5 s with no CPU but the wake-up: frozen');
    assert.deepEqual(freezes, [5000]);
    sources.pass(50);
    assert.equal(clock.frozenMs(), 5000, 'a read between ticks adds nothing');
  });

  it('sees a freeze that ended on the first read after it, before any tick', () => {
    const sources = scriptedSources();
    const clock = new ProcessFreezeClock({ intervalMs: 100, thresholdMs: 250, sources }).start();
    try {
      sources.pass(3000);
      assert.equal(clock.frozenMs(), 2900);
    } finally {
      clock.stop();
    }
  });

  it('measures a real SIGSTOP of a process, and not a blocked event loop', async () => {
    const clockModule = fileURLToPath(new URL('../src/health/ProcessFreezeClock.ts', import.meta.url));
    // A process running the clock; it answers each line on stdin with its frozen total ('busy' blocks its loop first).
    const script = `
      import { createInterface } from 'node:readline';
      const { ProcessFreezeClock } = await import(${JSON.stringify(clockModule)});
      const clock = new ProcessFreezeClock().start();
      createInterface({ input: process.stdin }).on('line', (line) => {
        if (line === 'busy') { const end = Date.now() + 1500; while (Date.now() < end); }
        process.stdout.write(String(Math.round(clock.frozenMs())) + '\\n');
      });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => String((await lines.next()).value);
    const ask = async (line: string): Promise<number> => {
      child.stdin!.write(`${line}\n`);
      return Number(await next());
    };
    try {
      assert.equal(await next(), 'ready');
      const atStart = await ask('read');
      assert.equal((await ask('busy')) - atStart, 0, '1.5 s of a blocked event loop is no freeze');
      // Bounds from this process's monotonic clock (the same clock as the child's), so a loaded machine that
      // stretches the pause, or delays the child, moves them too. A read makes the child look at its clock,
      // unless it looked less than an interval (100 ms) before.
      const readSentAt = performance.now();
      const beforeStop = await ask('read');
      child.kill('SIGSTOP');
      const stoppedAt = performance.now();
      await new Promise((r) => setTimeout(r, 2000));
      const continuedAt = performance.now();
      child.kill('SIGCONT');
      const frozen = (await ask('read')) - beforeStop;
      const answeredAt = performance.now();
      // At least the stop as seen from here, less the one interval the child's last look may precede it by;
      // at most all the time between the two reads (rounding to whole ms aside).
      const least = continuedAt - stoppedAt - 100 - 1;
      const most = answeredAt - readSentAt + 1;
      assert.ok(frozen >= least && frozen <= most, `a SIGSTOP of ${Math.round(continuedAt - stoppedAt)} ms counted as ${frozen} ms frozen (expected ${Math.round(least)}..${Math.round(most)})`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('CallTracker latency statistics', () => {
  it('leave frozen time out of a call duration', async () => {
    let frozen = 0;
    const tracker = new CallTracker({ nodeId: 'n1', capacity: 2, maxQueue: 2, freezeClock: { frozenMs: () => frozen } });
    const admission = tracker.admit({ callId: 'c1', server: 'slow', tool: 'work', deadline: undefined }, { run: () => {}, expire: () => {} });
    assert.ok(admission.ok);
    tracker.enqueue(admission.call);
    while (admission.call.state !== 'running') await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 30));
    frozen += 5000; // as if the process had been stopped for 5 s meanwhile
    // The clock says 5 s more passed.
    admission.call.startedMono = admission.call.startedMono! - 5000;
    tracker.finish(admission.call, 'completed');
    const ewma = tracker.toolLatency()['slow/work']!.ewmaMs;
    assert.ok(ewma >= 25 && ewma < 1000, `recorded ${ewma} ms`);
  });
});
