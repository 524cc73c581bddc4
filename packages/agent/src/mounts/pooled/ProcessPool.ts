import type { Logger } from '@flotilla/telemetry';
import type { JsonRpcErrorObject } from '../../http/SessionBudget.js';
import { SessionRefusedError, poolFull, serverUnavailable } from '../mountRefusals.js';
import type { ResolvedStdioSpec } from '../MountSpecs.js';
import { RestartBackoff } from '../stdio/RestartBackoff.js';
import { StdioProcess } from '../stdio/StdioProcess.js';

/** What {@link ProcessPool} needs. */
export interface ProcessPoolDeps {
  readonly nodeId: string;
  readonly spec: ResolvedStdioSpec;
  /** Bound to the server's name. */
  readonly logger: Logger;
}

/**
 * The processes of a `per-session` stdio mount: `pool.warm` of them are kept started ahead of demand (so
 * a new session does not wait for a process to boot), at most `pool.max` run at once, and each serves
 * exactly one session and is stopped with it (never reused: its state was that client's). Processes that
 * die without serving hold new starts back with exponential backoff ({@link RestartBackoff}).
 */
export class ProcessPool {
  private readonly idle: StdioProcess[] = [];
  private readonly busy = new Set<StdioProcess>();
  private starting = 0;
  private spawns = 0;
  private holdUntil = 0;
  private lastFailure: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: RestartBackoff;

  constructor(private readonly deps: ProcessPoolDeps) {
    this.backoff = new RestartBackoff(deps.spec.restart);
  }

  private get total(): number {
    return this.idle.length + this.busy.size + this.starting;
  }

  /** Starts the warm processes; resolves once they are spawned (or failed to). */
  async start(): Promise<void> {
    const wanted = Math.min(this.deps.spec.pool.warm, this.deps.spec.pool.max);
    await Promise.all(Array.from({ length: wanted }, () => this.spawnIdle()));
  }

  /** Why a new session would be refused now, if it would be. */
  refusal(): JsonRpcErrorObject | undefined {
    if (this.stopped) return serverUnavailable(this.deps.nodeId, this.deps.spec.name, 'it is stopped');
    if (this.idle.length > 0) return undefined;
    if (this.total >= this.deps.spec.pool.max) return poolFull(this.deps.nodeId, this.deps.spec.name, this.deps.spec.pool.max);
    const waitMs = this.holdUntil - Date.now();
    if (waitMs > 0) return serverUnavailable(this.deps.nodeId, this.deps.spec.name, `its processes failed ${this.backoff.consecutiveFailures} time(s) in a row (${this.lastFailure ?? 'exited'}); next start in ${waitMs} ms`);
    return undefined;
  }

  /** A process for a new session: a warm one, else a new one; throws a {@link SessionRefusedError} when none may start. */
  async take(): Promise<StdioProcess> {
    const refusal = this.refusal();
    if (refusal) throw new SessionRefusedError(refusal);
    const warm = this.idle.shift();
    const proc = warm ?? (await this.spawn());
    if (!proc) throw new SessionRefusedError(serverUnavailable(this.deps.nodeId, this.deps.spec.name, this.lastFailure ?? 'its process did not start'));
    this.busy.add(proc);
    this.refill();
    return proc;
  }

  /** A taken process is gone: `crashed` when it exited by itself, after serving `servedMs`. */
  released(proc: StdioProcess, crashed: boolean, servedMs: number): void {
    this.busy.delete(proc);
    if (crashed) this.failed(`process ${proc.pid ?? '?'} exited after serving ${servedMs} ms`, servedMs);
    else if (servedMs >= this.deps.spec.restart.stableAfterMs) this.backoff.reset();
    this.refill();
  }

  /** Details for the agent's health report. */
  status(): Record<string, unknown> {
    return { idle: this.idle.length, busy: this.busy.size, starting: this.starting, warm: this.deps.spec.pool.warm, max: this.deps.spec.pool.max, spawns: this.spawns, consecutiveFailures: this.backoff.consecutiveFailures, lastFailure: this.lastFailure };
  }

  /** Stops every process, idle or serving, and starts no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const all = [...this.idle, ...this.busy];
    this.idle.length = 0;
    this.busy.clear();
    await Promise.all(all.map((p) => p.stop()));
    if (all.length > 0) this.deps.logger.info({ processes: all.length }, 'stdio server processes stopped');
  }

  /** Tops the idle processes up to `warm`, unless starts are held back after failures. */
  private refill(): void {
    if (this.stopped) return;
    const waitMs = this.holdUntil - Date.now();
    if (waitMs > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refill(), waitMs);
      this.timer.unref();
      return;
    }
    const { warm, max } = this.deps.spec.pool;
    let missing = Math.min(warm - this.idle.length - this.starting, max - this.total);
    for (; missing > 0; missing--) void this.spawnIdle();
  }

  private async spawnIdle(): Promise<void> {
    const proc = await this.spawn();
    if (!proc) return;
    if (this.stopped) {
      await proc.stop();
      return;
    }
    this.idle.push(proc);
    void proc.exited.then(() => {
      const i = this.idle.indexOf(proc);
      if (i < 0) return; // taken meanwhile: its session reports how it ended
      this.idle.splice(i, 1);
      this.failed(`idle process ${proc.pid ?? '?'} exited`, 0);
      this.refill();
    });
  }

  /** Spawns one process; undefined (and a failure counted) when it cannot be started. */
  private async spawn(): Promise<StdioProcess | undefined> {
    this.starting += 1;
    this.spawns += 1;
    const proc = new StdioProcess({ spec: this.deps.spec, logger: this.deps.logger });
    try {
      await proc.start();
      return proc;
    } catch (err) {
      this.failed(err instanceof Error ? err.message : String(err), 0);
      return undefined;
    } finally {
      this.starting -= 1;
    }
  }

  private failed(why: string, servedMs: number): void {
    if (this.stopped) return;
    this.lastFailure = why;
    const delay = this.backoff.next(servedMs);
    this.holdUntil = Date.now() + delay;
    this.deps.logger.warn({ reason: why, restartInMs: delay, consecutiveFailures: this.backoff.consecutiveFailures }, 'stdio server process failed; holding new starts back');
  }
}
