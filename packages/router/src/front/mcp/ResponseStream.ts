import type { ServerResponse } from 'node:http';
import { SseStream } from './SseStream.js';

/** Most events one stream keeps for a client that resumes it. */
const MAX_BUFFERED_EVENTS = 256;
/** Most bytes of events one stream keeps for resuming. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** An event id: `<seq>~<stream key>`; the key says which stream (and, sealed, what it carried). */
export function eventId(seq: number, key: string): string {
  return `${seq}~${key}`;
}

/** Splits an event id a client sent back (`Last-Event-ID`) into its parts; undefined when it is none of ours. */
export function parseEventId(id: string): { seq: number; key: string } | undefined {
  const tilde = id.indexOf('~');
  if (tilde <= 0 || tilde > 12) return undefined;
  const seq = Number(id.slice(0, tilde));
  const key = id.slice(tilde + 1);
  return Number.isSafeInteger(seq) && seq >= 0 && key.length > 0 ? { seq, key } : undefined;
}

/**
 * The messages of one stream to the client: a POST's (its requests' progress, log messages, requests to
 * the client, and answers) or the session's standalone stream. Every event has an id, and recent events
 * are kept, so a client whose connection broke can resume (`GET` with `Last-Event-ID`) and get what it
 * missed. A POST's stream ends once every request on it is answered.
 */
export class ResponseStream {
  private sse: SseStream | undefined;
  private seq = 0;
  private readonly buffer: Array<{ seq: number; json: string }> = [];
  private bufferedBytes = 0;
  private readonly unanswered: Set<string>;
  private readonly detachListeners: Array<() => void> = [];
  private readonly standalone: boolean;

  constructor(
    /** The key in this stream's event ids. */
    readonly key: string,
    sse: SseStream | undefined,
    /** The requests this stream answers, or `standalone` for the session's stream, which never completes. */
    carries: ReadonlyArray<string | number> | 'standalone',
  ) {
    this.standalone = carries === 'standalone';
    this.unanswered = new Set(carries === 'standalone' ? [] : carries.map(String));
    if (sse) this.attachSse(sse);
  }

  /** Whether every request on the stream is answered (never, for the standalone stream). */
  get complete(): boolean {
    return !this.standalone && this.unanswered.size === 0;
  }

  /** Whether a client connection is reading the stream now. */
  get attached(): boolean {
    return this.sse?.open === true;
  }

  /**
   * A POST's stream whose first event, sent with the response headers, is a priming event (an id and no
   * data, spec 2025-11-25): the client can resume from there if the stream breaks before anything else.
   */
  static primed(key: string, res: ServerResponse, headers: Record<string, string>, carries: ReadonlyArray<string | number>): ResponseStream {
    const stream = new ResponseStream(key, undefined, carries);
    stream.attachSse(new SseStream(res, headers, { id: eventId(stream.seq++, key) }));
    return stream;
  }

  /** Sends a message (JSON text) as the next event; kept for resuming. */
  send(json: string): void {
    this.push(json, false);
  }

  /** A request on this stream got its answer; the stream ends once all have. */
  answered(requestId: string | number): void {
    this.unanswered.delete(String(requestId));
    if (this.complete) this.sse?.end();
  }

  /**
   * A request's answer (JSON text; none when the client cancelled it): sent, and the request marked
   * answered. When it is the stream's last, the event and the end of the response go in one write.
   */
  answer(requestId: string | number, json: string | undefined): void {
    this.unanswered.delete(String(requestId));
    if (json !== undefined) this.push(json, this.complete);
    else if (this.complete) this.sse?.end();
  }

  private push(json: string, last: boolean): void {
    const seq = this.seq++;
    this.buffer.push({ seq, json });
    this.bufferedBytes += json.length;
    while (this.buffer.length > MAX_BUFFERED_EVENTS || (this.bufferedBytes > MAX_BUFFERED_BYTES && this.buffer.length > 1)) {
      this.bufferedBytes -= this.buffer.shift()!.json.length;
    }
    this.sse?.send(json, eventId(seq, this.key), last);
  }

  /** Continues the stream on a new connection, replaying what came after event `afterSeq`. */
  resume(sse: SseStream, afterSeq: number): void {
    const previous = this.sse;
    this.attachSse(sse);
    if (previous?.open) previous.end();
    for (const e of this.buffer) if (e.seq > afterSeq) sse.send(e.json, eventId(e.seq, this.key));
    if (this.complete) sse.end();
  }

  /** Hears when the client's connection goes away before the stream completed. */
  onDetached(listener: () => void): void {
    this.detachListeners.push(listener);
  }

  /** Ends the stream's connection (the session closed). */
  end(): void {
    this.sse?.end();
  }

  private attachSse(sse: SseStream): void {
    this.sse = sse;
    sse.onClose(() => {
      if (this.sse !== sse || this.complete) return;
      for (const l of this.detachListeners) l();
    });
  }
}
