import { setTimeout as sleep } from 'node:timers/promises';
import type { McpHttpChannel } from './McpHttpChannel.js';
import { HttpStatusError } from './McpHttpChannel.js';
import type { MalformedServerMessage, ServerMessage } from './ServerMessage.js';

/** What a {@link StandaloneStream} reports to its session. */
export interface StandaloneStreamEvents {
  message(message: ServerMessage): void;
  malformed(error: MalformedServerMessage): void;
  /** Whether the server still answers (a ping); asked after the stream ended or broke. */
  alive(): Promise<boolean>;
  /**
   * The stream stopped for good: the node no longer knows the session (`forgotten`, HTTP 404: nothing of
   * it runs there any more), or the node stopped answering.
   */
  gone(reason: string, forgotten: boolean): void;
  /** Whether this replica still wants the stream (another replica may have taken it over); checked before reopening it. */
  wanted(): boolean;
}

/** Delay before reopening a stream that ended, growing with consecutive failures, ms. */
const REOPEN_MIN_MS = 250;
const REOPEN_MAX_MS = 2000;
/** Longest `retry:` delay a server may ask for, ms (a hostile one could otherwise silence the stream). */
const SERVER_RETRY_MAX_MS = 30_000;

/**
 * The session's standalone GET stream, where the server sends what belongs to no request (list_changed,
 * log messages and resource updates outside calls, its own requests). Reopened when it ends, resuming
 * after the last event id the server gave; when it keeps failing, or ends and the server does not answer
 * a ping, the session is reported gone. A server that offers no GET stream (405) is fine: nothing to read.
 */
export class StandaloneStream {
  private readonly stopper = new AbortController();
  private settleFirst!: () => void;
  /**
   * Settles once the first attempt to open the stream got its answer (open, none offered, or refused):
   * messages the server sends outside requests before then would be lost, so a session waits for it.
   */
  readonly firstAttempt = new Promise<void>((resolve) => {
    this.settleFirst = resolve;
  });

  constructor(
    private readonly channel: McpHttpChannel,
    private readonly events: StandaloneStreamEvents,
  ) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopper.abort();
    this.settleFirst();
  }

  private get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  private async run(): Promise<void> {
    let lastEventId: string | undefined;
    let failures = 0;
    while (!this.stopped) {
      let retryMs: number | undefined;
      try {
        const stream = await this.channel.openStream(this.stopper.signal, lastEventId).finally(() => this.settleFirst());
        if (!stream) return;
        failures = 0;
        try {
          await stream.read((m) => this.events.message(m), (e) => this.events.malformed(e));
        } finally {
          lastEventId = stream.lastEventId ?? lastEventId;
          retryMs = stream.retryMs;
        }
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof HttpStatusError && err.status === 404) {
          this.events.gone('the node no longer knows the session (HTTP 404)', true);
          return;
        }
        failures += 1;
      }
      if (this.stopped || !this.events.wanted()) return;
      if (!(await this.events.alive())) {
        if (!this.stopped) this.events.gone('it stopped answering', false);
        return;
      }
      const delay = retryMs !== undefined ? Math.min(retryMs, SERVER_RETRY_MAX_MS) : Math.min(REOPEN_MAX_MS, REOPEN_MIN_MS * 2 ** failures);
      await sleep(delay, undefined, { signal: this.stopper.signal }).catch(() => {});
    }
  }
}
