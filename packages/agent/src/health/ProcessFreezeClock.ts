import { performance } from 'node:perf_hooks';

/** Where {@link ProcessFreezeClock} reads time and CPU use (injectable for tests). */
export interface FreezeClockSources {
  /** Monotonic time, ms. */
  now(): number;
  /** CPU time this process used so far (user + system), ms. */
  cpuMs(): number;
}

/** Options of {@link ProcessFreezeClock}. */
export interface FreezeClockOptions {
  /** How often the clock looks, ms (default 100). */
  intervalMs?: number;
  /** A tick later than this past its interval may be a freeze; less is scheduling noise, ms (default 500). */
  thresholdMs?: number;
  /** Told of each freeze once it has ended, with its length in ms. */
  onFreeze?: (ms: number) => void;
  sources?: FreezeClockSources;
}

const processSources: FreezeClockSources = {
  now: () => performance.now(),
  cpuMs: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },
};

/**
 * Counts the time this process was frozen: SIGSTOP, a paused VM or container, a debugger. Wall-clock time
 * then passes while the process runs nothing, so calls it was running look that much slower although
 * the tool was not. The agent takes frozen time out of its latency statistics, or one pause would make a
 * healthy node look slow to every router for as long as those statistics take to wear off.
 *
 * How: a timer ticks every `intervalMs`. A tick later than `thresholdMs` past the interval, in a stretch
 * in which the process used (next to) no CPU, was frozen for the lateness. Other late ticks are not: a
 * busy event loop delays timers but burns CPU meanwhile, and so does a process that is slowed by a
 * contended host or a container's CPU limit, which is real slowness the statistics must keep. Reading the
 * clock looks too (at most once an interval), so a call that ends just after a freeze sees it before the
 * timer's next tick.
 */
export class ProcessFreezeClock {
  private readonly intervalMs: number;
  private readonly thresholdMs: number;
  private readonly sources: FreezeClockSources;
  private lastAt: number;
  private lastCpuMs: number;
  private frozen = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: FreezeClockOptions = {}) {
    this.intervalMs = options.intervalMs ?? 100;
    this.thresholdMs = options.thresholdMs ?? 500;
    this.sources = options.sources ?? processSources;
    this.lastAt = this.sources.now();
    this.lastCpuMs = this.sources.cpuMs();
  }

  /** Starts looking every interval (the timer does not keep the process alive). */
  start(): this {
    this.timer ??= setInterval(() => this.look(), this.intervalMs).unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Frozen time so far, ms: the difference of two readings is the freeze between them. */
  frozenMs(): number {
    // A freeze shows as a gap longer than the interval; shorter ones need no look (nor its CPU-time read).
    if (this.sources.now() - this.lastAt > this.intervalMs) this.look();
    return this.frozen;
  }

  private look(): void {
    const at = this.sources.now();
    const cpuMs = this.sources.cpuMs();
    const gap = at - this.lastAt;
    const cpuUsed = cpuMs - this.lastCpuMs;
    this.lastAt = at;
    this.lastCpuMs = cpuMs;
    const late = gap - this.intervalMs;
    // "Next to no CPU": a few ms for the wake-up itself, and timer slack on long gaps.
    if (late <= this.thresholdMs || cpuUsed > Math.max(5, gap * 0.02)) return;
    this.frozen += late;
    this.options.onFreeze?.(late);
  }
}
