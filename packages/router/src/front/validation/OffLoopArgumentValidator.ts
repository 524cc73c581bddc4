import { Worker } from 'node:worker_threads';
import type { Logger } from '@flotilla/telemetry';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { ToolArgumentValidator, type ArgumentCheck } from '../ToolArgumentValidator.js';
import { jsonSizeWithin } from './checkCost.js';
import type { ArgumentCheckReply, ArgumentCheckRequest } from './ArgumentCheckMessages.js';

/** Limits of {@link OffLoopArgumentValidator}. */
export interface ArgumentCheckLimits {
  /** Longest one check may take, from the moment it is asked (queueing included), ms. */
  budgetMs: number;
  /** Most checks waiting at once; past it a call goes on unchecked (its node still checks). */
  maxPending: number;
}

export const DEFAULT_ARGUMENT_CHECK_LIMITS: Readonly<ArgumentCheckLimits> = { budgetMs: 250, maxPending: 1000 };

interface Pending {
  readonly tool: Pick<Tool, 'name' | 'inputSchema'>;
  readonly key: number;
  readonly args: Record<string, unknown> | undefined;
  readonly resolve: (check: ArgumentCheck) => void;
  /** Set once the check is sent to a ready worker: its budget runs from then. */
  timer?: NodeJS.Timeout;
}

/** Longest a new worker may take to load before the checks waiting for it go on unchecked, ms. */
const WORKER_START_TIMEOUT_MS = 20_000;
/**
 * Checks whose work is bounded small are run on the event loop (a message to the worker and back costs
 * more than they do, and on a busy machine much more): Ajv's work is at most about the argument size times
 * the schema size (and the argument size squared for `uniqueItems`), ~7 ns per unit at worst measured
 * here, so a product up to this bound stays within ~1-2 ms. Bigger schemas are never compiled here.
 */
const INLINE_WORK = 1 << 17;
const INLINE_MAX_SCHEMA_BYTES = 16 * 1024;

/** After a worker failed without ever loading, no new one starts for this long, doubling per failure up to the max, ms. */
const RESPAWN_DELAY_MS = 500;
const MAX_RESPAWN_DELAY_MS = 60_000;

/**
 * The worker's module, beside this one. Run from the TypeScript sources (the package's tests, under tsx),
 * this is the built one in `dist/` (tests run after the build): a worker thread on Node 20 does not get
 * tsx's loader for its entry module.
 */
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL(import.meta.url.replace('/src/front/validation/OffLoopArgumentValidator.ts', '/dist/front/validation/argumentCheckWorker.js'))
  : new URL('./argumentCheckWorker.js', import.meta.url);

/**
 * Checks tool-call arguments against server-supplied input schemas so that no schema and no argument can
 * block the router's event loop: small checks (bounded work, see {@link INLINE_WORK}) run in place, the
 * others on a worker thread within a time budget: Ajv's work grows with the
 * product of argument and schema sizes (an `enum` of thousands against an array of thousands, `uniqueItems`
 * on objects, many `anyOf` branches), and the arguments come from clients. A check that runs past its
 * budget ends the worker (a new one starts on the next check); it and the checks queued behind it let
 * their calls go on unchecked, as does a check when too many are waiting: the router's check is a fast
 * answer for clients, the node checks arguments anyway. Each such case is logged and counted.
 */
export class OffLoopArgumentValidator {
  private worker: Worker | undefined;
  /** Whether the current worker has loaded (checks wait for it, untimed, until it has). */
  private ready = false;
  private startTimer: NodeJS.Timeout | undefined;
  /** Workers in a row that failed before loading, and when the next may start (epoch ms). */
  private failedStarts = 0;
  private respawnAt = 0;
  /** Keys of the schemas (as the catalog holds them) the current worker was sent. */
  private known = new Set<number>();
  private readonly keys = new WeakMap<object, number>();
  /** JSON size of each schema (as the catalog holds them), measured once. */
  private readonly schemaBytes = new WeakMap<object, number>();
  private readonly inline: ToolArgumentValidator;
  private readonly pending = new Map<number, Pending>();
  private nextKey = 1;
  private nextId = 1;
  private stopped = false;

  constructor(
    private readonly limits: ArgumentCheckLimits,
    private readonly logger: Logger,
    /** Hears each call let through unchecked, with why (`budget`, `busy`, `worker`). */
    private readonly onUnchecked?: (reason: 'budget' | 'busy' | 'worker') => void,
  ) {
    this.inline = new ToolArgumentValidator(logger);
    // Loaded ahead of the first call.
    this.ensureWorker();
  }

  check(tool: Pick<Tool, 'name' | 'inputSchema'>, args: Record<string, unknown> | undefined): Promise<ArgumentCheck> {
    if (this.stopped) return Promise.resolve({ ok: true, unchecked: 'the router is stopping' });
    if (this.pending.size >= this.limits.maxPending) {
      this.onUnchecked?.('busy');
      return Promise.resolve({ ok: true, unchecked: `more than ${this.limits.maxPending} argument checks waiting` });
    }
    const schema = tool.inputSchema as object;
    let bytes = this.schemaBytes.get(schema);
    if (bytes === undefined) {
      bytes = Buffer.byteLength(JSON.stringify(schema));
      this.schemaBytes.set(schema, bytes);
    }
    if (bytes <= INLINE_MAX_SCHEMA_BYTES) {
      const argsLimit = Math.min(Math.floor(INLINE_WORK / Math.max(bytes, 1)), Math.floor(Math.sqrt(INLINE_WORK)));
      if (jsonSizeWithin(args ?? {}, argsLimit)) return Promise.resolve(this.inline.check(tool as Tool, args));
    }
    let key = this.keys.get(schema);
    if (key === undefined) {
      key = this.nextKey++;
      this.keys.set(schema, key);
    }
    const id = this.nextId++;
    if (!this.ensureWorker()) {
      this.onUnchecked?.('worker');
      return Promise.resolve({ ok: true, unchecked: 'the validation worker cannot start (see the log)' });
    }
    return new Promise<ArgumentCheck>((resolve) => {
      const p: Pending = { tool, key, args, resolve };
      this.pending.set(id, p);
      if (this.ready) this.send(id, p);
    });
  }

  /** Ends the worker; checks still waiting let their calls go on unchecked. */
  async stop(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    this.worker = undefined;
    clearTimeout(this.startTimer);
    this.failAll('the router is stopping');
    await worker?.terminate();
  }

  private send(id: number, p: Pending): void {
    const worker = this.worker;
    if (!worker) return;
    p.timer ??= setTimeout(() => this.overBudget(id), this.limits.budgetMs);
    const request: ArgumentCheckRequest = { id, key: p.key, args: p.args, ...(this.known.has(p.key) ? {} : { tool: { name: p.tool.name, inputSchema: p.tool.inputSchema } }) };
    this.known.add(p.key);
    try {
      worker.postMessage(request);
    } catch (err) {
      // Arguments that cannot be cloned cannot have come from JSON; the node will say what is wrong.
      this.settle(id, { ok: true, unchecked: `arguments not checkable here (${(err as Error).message})` });
    }
  }

  /** The current worker, or a new one; undefined while a worker that keeps failing to load may not restart. */
  private ensureWorker(): Worker | undefined {
    if (this.worker) return this.worker;
    if (Date.now() < this.respawnAt) return undefined;
    const worker = new Worker(WORKER_URL);
    worker.unref();
    worker.on('message', (reply: ArgumentCheckReply) => {
      if (worker !== this.worker) return;
      if ('ready' in reply) {
        this.ready = true;
        this.failedStarts = 0;
        clearTimeout(this.startTimer);
        for (const [id, p] of this.pending) this.send(id, p);
        return;
      }
      if ('missing' in reply) {
        const p = this.pending.get(reply.id);
        if (!p) return;
        this.known.delete(p.key);
        this.send(reply.id, p);
        return;
      }
      this.settle(reply.id, reply.result);
    });
    worker.on('error', (err) => {
      if (worker !== this.worker) return;
      this.logger.error({ err }, 'the argument validation worker failed; calls waiting for it go on unchecked');
      this.replaceWorker('worker');
    });
    worker.on('exit', (code) => {
      if (worker !== this.worker) return;
      this.logger.warn({ code }, 'the argument validation worker exited; calls waiting for it go on unchecked');
      this.replaceWorker('worker');
    });
    this.worker = worker;
    this.ready = false;
    this.known = new Set();
    clearTimeout(this.startTimer);
    this.startTimer = setTimeout(() => {
      if (worker !== this.worker || this.ready) return;
      this.logger.error({ timeoutMs: WORKER_START_TIMEOUT_MS }, 'the argument validation worker did not start in time; calls waiting for it go on unchecked');
      this.replaceWorker('worker');
    }, WORKER_START_TIMEOUT_MS);
    this.startTimer.unref();
    return worker;
  }

  private overBudget(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.logger.warn(
      { tool: p.tool.name, budgetMs: this.limits.budgetMs, waiting: this.pending.size },
      'argument check over its time budget: the validation worker is replaced, and the calls waiting for it go on unchecked (their nodes check them)',
    );
    this.replaceWorker('budget');
  }

  /** Drops the current worker (terminated in the background) and lets every waiting call go on unchecked. */
  private replaceWorker(reason: 'budget' | 'worker'): void {
    const worker = this.worker;
    if (!this.ready) {
      this.failedStarts++;
      this.respawnAt = Date.now() + Math.min(MAX_RESPAWN_DELAY_MS, RESPAWN_DELAY_MS * 2 ** (this.failedStarts - 1));
    }
    this.worker = undefined;
    this.ready = false;
    clearTimeout(this.startTimer);
    void worker?.terminate().catch(() => {});
    for (let i = 0; i < this.pending.size; i++) this.onUnchecked?.(reason);
    this.failAll(reason === 'budget' ? `argument check over its ${this.limits.budgetMs} ms budget` : 'the validation worker failed');
  }

  private failAll(why: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: true, unchecked: why });
  }

  private settle(id: number, check: ArgumentCheck): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    p.resolve(check);
  }
}
