import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';
import { createParser } from 'eventsource-parser';
import { MalformedServerMessage, toServerMessage, type ServerMessage } from './ServerMessage.js';

/** Largest single SSE event accepted from a node, bytes (a hostile server cannot grow the buffer past it). */
const MAX_EVENT_BYTES = 64 * 1024 * 1024;

/**
 * The JSON-RPC messages of one `text/event-stream` response, parsed as they arrive. Events that are not
 * JSON-RPC messages are reported to `onMalformed` and skipped; the stream goes on.
 */
export class SseMessageStream {
  /** Id of the last event that carried one: where a resumed stream starts (`Last-Event-ID`). */
  lastEventId: string | undefined;
  /** Reconnection delay the server asked for (`retry:`), ms. */
  retryMs: number | undefined;

  constructor(private readonly body: Dispatcher.ResponseData['body']) {}

  /**
   * Reads until the stream ends, calling `onMessage` for every message in order. Resolves when the server
   * ends the stream, rejects when it breaks (connection lost, aborted).
   */
  async read(onMessage: (message: ServerMessage) => void, onMalformed: (error: MalformedServerMessage) => void): Promise<void> {
    const parser = createParser({
      maxBufferSize: MAX_EVENT_BYTES,
      onEvent: (event) => {
        if (event.id !== undefined) this.lastEventId = event.id;
        if (event.event !== undefined && event.event !== 'message') return;
        if (event.data === '') return; // priming events carry only an id
        let json: unknown;
        try {
          json = JSON.parse(event.data);
        } catch (err) {
          onMalformed(new MalformedServerMessage(`an event that is not JSON (${(err as Error).message})`));
          return;
        }
        try {
          onMessage(toServerMessage(json, event.data));
        } catch (err) {
          if (err instanceof MalformedServerMessage) onMalformed(err);
          else throw err;
        }
      },
      onRetry: (ms) => {
        this.retryMs = ms;
      },
      onError: (error) => {
        // Past the size bound the parser stops: the stream is unusable, so it ends as broken.
        if (error.type === 'max-buffer-size-exceeded') this.body.destroy(new Error(`an SSE event over ${MAX_EVENT_BYTES} bytes`));
      },
    });
    const decoder = new StringDecoder('utf8');
    const body = this.body;
    // 'data' events rather than `for await`: the async iterator costs a promise and a microtask per chunk
    // and a set of listeners per response, on every call. `finished` settles as the loop did: resolved at
    // the end, rejected when the body errs or closes before its end.
    body.on('data', (chunk: Buffer) => {
      try {
        parser.feed(decoder.write(chunk));
      } catch (err) {
        body.destroy(err as Error);
      }
    });
    await finished(body);
    const rest = decoder.end();
    if (rest) parser.feed(rest);
  }

  /** Stops reading and closes the response. */
  cancel(): void {
    this.body.destroy();
  }
}
