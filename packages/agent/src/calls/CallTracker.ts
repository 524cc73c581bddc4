import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { CallProgress } from '@flotilla/protocol';
import type { RejectionReason } from './callOutcomeLabel.js';
import { nodeBusy, nodeDraining, type CallRejection } from './callRejections.js';
import { ToolLatencyStats } from './ToolLatencyStats.js';
import type { TaskCounter } from './SessionTasks.js';
import { TrackedCall, type CallHandlers, type CallIdentity, type CallOutcome } from './TrackedCall.js';

/** Options of {@link CallTracker}. */
export interface CallTrackerOptions {
  nodeId: string;
  /** Calls that may run at once on the node. */
  capacity: number;
  /** Calls that may wait for a slot before new ones are answered busy. */
  maxQueue: number;
  /**
   * Time the process was frozen (see `ProcessFreezeClock`): taken out of the calls' durations in the
   * latency statistics.
   */
  freezeClock?: { frozenMs(): number };
}

/** Load of the node at one moment. */
export interface LoadSnapshot {
  inflight: number;
  queued: number;
  capacity: number;
  draining: boolean;
  /** Tasks created on this node and not yet seen to end; their work runs outside `inflight`. */
  tasks: number;
}

interface TrackerEvents {
  /** Inflight, queued or draining changed. */
  change: [];
  /** A running call reported progress. */
  progress: [CallProgress, TrackedCall];
  /** An admitted call got its slot and is handed to the server. */
  started: [TrackedCall];
  /** A call was refused at admission; it never became a {@link TrackedCall}. */
  rejected: [CallIdentity, RejectionReason];
  /** A call finished (any outcome). */
  finished: [TrackedCall, CallOutcome];
}

/** Result of {@link CallTracker.admit}. */
export type Admission = { ok: true; call: TrackedCall } | { ok: false; reason: RejectionReason; rejection: CallRejection };

/**
 * Node-wide book of tool calls across every hosted server and session: admission (`capacity` slots and a
 * FIFO queue; busy when both are full, refusal while draining), per-tool EWMA latency, and progress.
 * Transports report what they see; the tracker decides when a call runs.
 *
 * The queue is the insertion-ordered `waiting` set itself: a call that ends while queued leaves it at once
 * (no cancelled entries linger until they reach the front), and a call that finds a free slot starts in
 * the same tick. p-queue did this before, with an abort signal, a listener and a promise chain per call;
 * none of its other features (priorities, rate limits) were used. With the message-kind checks, dropping
 * it took 43-45 % off the agent's CPU per call (docs/performance.md).
 */
export class CallTracker extends EventEmitter<TrackerEvents> implements TaskCounter {
  /** Admitted calls waiting for a slot, oldest first. */
  private readonly waiting = new Set<TrackedCall>();
  private readonly running = new Set<TrackedCall>();
  /** Open tasks per hosted server. */
  private readonly tasks = new Map<string, number>();
  private taskTotal = 0;
  private readonly latency = new ToolLatencyStats();
  private drainingFlag = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: CallTrackerOptions) {
    super();
  }

  get draining(): boolean {
    return this.drainingFlag;
  }

  /** Admits a call (it then waits for a slot) or says why not. Call {@link enqueue} once the caller has registered it. */
  admit(identity: CallIdentity, handlers: CallHandlers): Admission {
    if (this.drainingFlag) return this.refuse(identity, 'draining', nodeDraining(this.options.nodeId));
    if (this.running.size >= this.options.capacity && this.waiting.size >= this.options.maxQueue) {
      return this.refuse(identity, 'busy', nodeBusy(this.options.nodeId, this.running.size, this.waiting.size));
    }
    return { ok: true, call: new TrackedCall(identity, handlers) };
  }

  /** Queues an admitted call; its `run` handler is called when a slot is free (at once when one is). */
  enqueue(call: TrackedCall): void {
    const { deadline } = call.identity;
    if (deadline !== undefined) {
      call.deadlineTimer = setTimeout(() => call.handlers.expire(), Math.max(0, deadline - Date.now()));
      call.deadlineTimer.unref();
    }
    if (this.running.size < this.options.capacity && this.waiting.size === 0) {
      this.start(call);
      return;
    }
    this.waiting.add(call);
    this.emit('change');
  }

  private start(call: TrackedCall): void {
    this.running.add(call);
    call.state = 'running';
    call.startedAt = Date.now();
    call.startedMono = performance.now();
    call.frozenAtStartMs = this.options.freezeClock?.frozenMs() ?? 0;
    this.emit('started', call);
    this.emit('change');
    call.handlers.run();
  }

  /** Starts waiting calls, oldest first, while slots are free. */
  private startWaiting(): void {
    while (this.running.size < this.options.capacity) {
      const next = this.waiting.values().next();
      if (next.done) return;
      this.waiting.delete(next.value);
      this.start(next.value);
    }
  }

  /** Records how a call ended and frees its slot or queue place. Idempotent. */
  finish(call: TrackedCall, outcome: CallOutcome): void {
    const wasRunning = call.state === 'running';
    if (!call.settle()) return;
    this.waiting.delete(call);
    this.running.delete(call);
    // A task-augmented call only created its task: that time says nothing of how long the tool takes.
    if (wasRunning && !call.identity.task && call.startedMono !== undefined && (outcome === 'completed' || outcome === 'tool_error' || outcome === 'failed')) {
      // Time the whole process stood still is no time the tool took.
      const frozenMs = (this.options.freezeClock?.frozenMs() ?? 0) - (call.frozenAtStartMs ?? 0);
      this.latency.record(call.statsKey, Math.max(0, performance.now() - call.startedMono - frozenMs));
    }
    this.emit('finished', call, outcome);
    this.emit('change');
    // Next tick of the queue after the caller (a transport sending an answer) is done with this one.
    if (wasRunning && this.waiting.size > 0) queueMicrotask(() => this.startWaiting());
    this.wakeIfIdle();
  }

  /** A task was created on this node (its work now runs outside any call's slot). */
  taskOpened(server: string): void {
    this.tasks.set(server, (this.tasks.get(server) ?? 0) + 1);
    this.taskTotal += 1;
    this.emit('change');
  }

  /** A task reached a terminal status, expired, or its session closed. */
  taskEnded(server: string): void {
    const n = this.tasks.get(server) ?? 0;
    if (n <= 0) return;
    this.tasks.set(server, n - 1);
    this.taskTotal -= 1;
    this.emit('change');
    this.wakeIfIdle();
  }

  /** Open tasks per hosted server (servers that had one). */
  openTasks(): Array<[server: string, tasks: number]> {
    return [...this.tasks];
  }

  private get idle(): boolean {
    return this.running.size === 0 && this.waiting.size === 0 && this.taskTotal === 0;
  }

  private wakeIfIdle(): void {
    if (!this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Records progress of a running call. */
  progress(call: TrackedCall, progress: number, total: number | undefined): void {
    if (call.state !== 'running') return;
    call.lastProgress = { progress, total };
    this.emit('progress', {
      callId: call.identity.callId,
      server: call.identity.server,
      tool: call.identity.tool,
      progress: Math.max(0, progress),
      ...(total !== undefined && total >= 0 ? { total } : {}),
      elapsedMs: Date.now() - (call.startedAt ?? call.admittedAt),
    }, call);
  }

  private refuse(identity: CallIdentity, reason: RejectionReason, rejection: CallRejection): Admission {
    this.emit('rejected', identity, reason);
    return { ok: false, reason, rejection };
  }

  /** From now on every new call is refused with NodeDraining. */
  startDraining(): void {
    if (this.drainingFlag) return;
    this.drainingFlag = true;
    this.emit('change');
  }

  /** Resolves when no call runs or waits and no task is open. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  load(): LoadSnapshot {
    return { inflight: this.running.size, queued: this.waiting.size, capacity: this.options.capacity, draining: this.drainingFlag, tasks: this.taskTotal };
  }

  toolLatency(): ReturnType<ToolLatencyStats['snapshot']> {
    return this.latency.snapshot();
  }

  /** Progress of every running call that reported some. */
  runningProgress(): CallProgress[] {
    const now = Date.now();
    return [...this.running]
      .filter((c) => c.lastProgress)
      .map((c) => ({
        callId: c.identity.callId,
        server: c.identity.server,
        tool: c.identity.tool,
        progress: Math.max(0, c.lastProgress!.progress),
        ...(c.lastProgress!.total !== undefined ? { total: c.lastProgress!.total } : {}),
        elapsedMs: now - (c.startedAt ?? c.admittedAt),
      }));
  }
}
