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
  /** Unexplained time shorter than this is scheduling noise, not a freeze, ms (default 250). */
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
 * How: a timer ticks every `intervalMs`. Time between two looks that is neither the interval nor CPU the
 * process used is unexplained: a busy event loop delays timers too, but it burns CPU meanwhile, and a
 * frozen process burns none. Unexplained time over `thresholdMs` counts as frozen. Reading the clock looks
 * too, so a call that ends just after a freeze sees it before the timer's next tick. (Synchronous waits
 * that burn no CPU, such as `execSync`, look the same; they have no place on an agent's event loop.)
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
    this.thresholdMs = options.thresholdMs ?? 250;
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
    this.look();
    return this.frozen;
  }

  private look(): void {
    const at = this.sources.now();
    const cpuMs = this.sources.cpuMs();
    const unexplained = at - this.lastAt - this.intervalMs - (cpuMs - this.lastCpuMs);
    this.lastAt = at;
    this.lastCpuMs = cpuMs;
    if (unexplained <= this.thresholdMs) return;
    this.frozen += unexplained;
    this.options.onFreeze?.(unexplained);
  }
}
