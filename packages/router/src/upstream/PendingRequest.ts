import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import type { MessageId } from './ServerMessage.js';
import type { SseMessageStream } from './SseMessageStream.js';
import type { ServerMessageSink } from './UpstreamPeer.js';

/** Why a request's own timers ended it. */
export type RequestExpiry = 'idle' | 'deadline';

/** Per-request settings of a {@link PendingRequest}. */
export interface PendingRequestOptions {
  /** No response and no progress for this long ends the request. */
  readonly timeoutMs: number;
  /** Absolute end (epoch ms): the request ends then, progress or not. */
  readonly deadlineAt?: number;
  readonly onprogress?: (progress: Progress) => void;
  /** Where messages on this request's response stream go (else the session's peer). */
  readonly sink?: ServerMessageSink;
}

/**
 * One request the router sent upstream and has not had answered: its timers (an idle timeout that
 * progress restarts, and an absolute deadline), the HTTP exchange carrying it, and the promise its caller
 * awaits. Settles once.
 */
export class PendingRequest {
  /** Aborts the HTTP exchange that carries the request. */
  readonly http = new AbortController();
  readonly result: Promise<Record<string, unknown>>;
  /** The response stream, once the node answered with one. */
  stream: SseMessageStream | undefined;
  private resolveResult!: (result: Record<string, unknown>) => void;
  private rejectResult!: (error: Error) => void;
  private idleTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    readonly id: MessageId,
    readonly options: PendingRequestOptions,
    private readonly onExpired: (request: PendingRequest, why: RequestExpiry) => void,
  ) {
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.armIdle();
    if (options.deadlineAt !== undefined) {
      this.deadlineTimer = setTimeout(() => this.onExpired(this, 'deadline'), Math.max(0, options.deadlineAt - Date.now()));
    }
  }

  get settled(): boolean {
    return this.done;
  }

  /** The server reported progress: the idle timeout starts again. */
  progress(progress: Progress): void {
    if (this.done) return;
    this.armIdle();
    this.options.onprogress?.(progress);
  }

  resolve(result: Record<string, unknown>): void {
    if (this.settle()) this.resolveResult(result);
  }

  fail(error: Error): void {
    if (this.settle()) this.rejectResult(error);
  }

  /** Stops reading the response and closes its HTTP request (after a cancel or a failure nobody reads it). */
  abortExchange(): void {
    this.stream?.cancel();
    this.http.abort();
  }

  private settle(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.deadlineTimer);
    return true;
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onExpired(this, 'idle'), this.options.timeoutMs);
  }
}
