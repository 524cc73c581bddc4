import type { Span } from '@opentelemetry/api';

/** Identity of one `tools/call` as the agent sees it. */
export interface CallIdentity {
  /** Router-assigned id (`_meta["flotilla/callId"]`), else `<sessionId>:<requestId>`. */
  callId: string;
  server: string;
  tool: string;
  /** Epoch ms after which nobody waits for the result (`_meta["flotilla/deadline"]`). */
  deadline: number | undefined;
}

/** How a call left the node. */
export type CallOutcome = 'completed' | 'failed' | 'cancelled' | 'deadline' | 'closed';

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
  /** Aborting removes a queued call from the node's queue and frees a running call's slot. */
  readonly abort = new AbortController();
  readonly finished: Promise<void>;
  lastProgress: { progress: number; total: number | undefined } | undefined;
  span: Span | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
  private resolveFinished!: () => void;

  constructor(readonly identity: CallIdentity, readonly handlers: CallHandlers) {
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  /** `<server>/<tool>`, the key of per-tool statistics. */
  get statsKey(): string {
    return `${this.identity.server}/${this.identity.tool}`;
  }

  /** Marks the call done; returns false when it already was. */
  settle(): boolean {
    if (this.state === 'done') return false;
    this.state = 'done';
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.resolveFinished();
    return true;
  }
}
