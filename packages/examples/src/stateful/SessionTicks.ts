/** What {@link SessionTicks.stop} found. */
export type TicksStop = { ok: true; ticks: number } | { ok: false; reason: string };

/**
 * A timer of one MCP session: once started it calls `onTick` every interval until stopped or the session
 * ends. Stopping ticks that are not running says so instead of doing anything.
 */
export class SessionTicks {
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private everStarted = false;

  constructor(private readonly onTick: (tick: number) => void) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Ticks sent since the last start. */
  get ticks(): number {
    return this.count;
  }

  /** Starts ticking; false when already running. */
  start(intervalMs: number): boolean {
    if (this.timer) return false;
    this.everStarted = true;
    this.count = 0;
    this.timer = setInterval(() => {
      this.count += 1;
      this.onTick(this.count);
    }, intervalMs);
    this.timer.unref();
    return true;
  }

  /** Stops ticking and tells how many ticks were sent, or why there was nothing to stop. */
  stop(): TicksStop {
    if (!this.timer) {
      return { ok: false, reason: this.everStarted ? 'ticks are not running in this session (already stopped)' : 'ticks were never started in this session; nothing to stop' };
    }
    clearInterval(this.timer);
    this.timer = undefined;
    return { ok: true, ticks: this.count };
  }

  /** Stops without a report (the session ended). */
  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
