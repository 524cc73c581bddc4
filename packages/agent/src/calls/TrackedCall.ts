import { performance } from 'node:perf_hooks';
import type { Context, Span } from '@opentelemetry/api';
import type { CallCaller } from './CallCaller.js';

/** Identity of one `tools/call` as the agent sees it. */
export interface CallIdentity {
  /** Router-assigned id (`_meta["flotilla/callId"]`), else `<sessionId>:<requestId>`. */
  callId: string;
  server: string;
  tool: string;
  /** Epoch ms after which nobody waits for the result (`_meta["flotilla/deadline"]`). */
  deadline: number | undefined;
  /**
   * A task-augmented call (`params.task`, MCP 2025-11-25): its answer is a `CreateTaskResult` and the
   * tool's work runs afterwards, as a task (see `SessionTasks`).
   */
  task?: boolean;
  /** Who sent it (the request's verified mesh token), when the node requires one. */
  caller?: CallCaller;
}

/**
 * How a call left the node: `completed` (a result), `tool_error` (a result with `isError: true`), `failed`
 * (a JSON-RPC error from the server), `cancelled` (by the client, or its connection went away),
 * `deadline` (the caller's deadline passed), `closed` (the session ended while the call was open).
 */
export type CallOutcome = 'completed' | 'tool_error' | 'failed' | 'cancelled' | 'deadline' | 'closed';

/** What the transport that received a call does when the tracker starts or expires it. */
export interface CallHandlers {
  /** A slot is free: hand the request to the server. */
  run(): void;
  /** The call's deadline passed (queued or running). */
  expire(): void;
}

/** One `tools/call` from admission to its answer. */
export class TrackedCall {
  state: 'queued' | 'running' | 'done' = 'queued';
  readonly admittedAt = Date.now();
  startedAt: number | undefined;
  /** Monotonic clock (ms) at admission and start: durations for metrics, immune to wall-clock steps. */
  readonly admittedMono = performance.now();
  startedMono: number | undefined;
  /** The process's frozen time when the call got its slot (see `ProcessFreezeClock`), ms. */
  frozenAtStartMs: number | undefined;
  lastProgress: { progress: number; total: number | undefined } | undefined;
  /** The agent's span for this call (from admission to answer) and the context that carries it. */
  span: Span | undefined;
  traceContext: Context | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;

  constructor(readonly identity: CallIdentity, readonly handlers: CallHandlers) {}

  /** `<server>/<tool>`, the key of per-tool statistics. */
  get statsKey(): string {
    return `${this.identity.server}/${this.identity.tool}`;
  }

  /** Seconds the call waited for a slot; undefined until it starts running. */
  get queueWaitSeconds(): number | undefined {
    return this.startedMono === undefined ? undefined : (this.startedMono - this.admittedMono) / 1000;
  }

  /** Seconds the call has been running (the tool's time, queue wait excluded); undefined if it never ran. */
  runSeconds(now: number = performance.now()): number | undefined {
    return this.startedMono === undefined ? undefined : (now - this.startedMono) / 1000;
  }

  /** Marks the call done; returns false when it already was. */
  settle(): boolean {
    if (this.state === 'done') return false;
    this.state = 'done';
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    return true;
  }
}
