import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { fetch as undiciFetch, type Dispatcher } from 'undici';

/**
 * A request the node gave no response at all to (the connection failed before any response header):
 * what the router needs to tell "never answered" from "lost mid-stream". The undici error is its `cause`.
 */
export class NoResponseError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'NoResponseError';
  }
}

/** How an HTTP response stream carrying server messages ended. */
export interface StreamEnd {
  /** Set when the stream broke (connection reset, node died) rather than ending cleanly. */
  error?: Error;
}

/** Callbacks of {@link UpstreamFetch}. */
export interface UpstreamFetchEvents {
  /** The SSE response stream of the POST that carried call `callId` ended. */
  onCallStreamEnd(callId: string, end: StreamEnd): void;
  /** The standalone GET SSE stream (server notifications such as list_changed) ended. */
  onStandaloneStreamEnd(end: StreamEnd): void;
}

// The router sets this key on every forwarded request; matching it in the JSON text avoids parsing
// (possibly large) bodies. A string value inside arguments has its quotes escaped, so it cannot match.
const CALL_ID_PATTERN = /"flotilla\/callId":"([^"\\]+)"/;

/**
 * The `fetch` one upstream MCP session's transport uses: undici's fetch over a shared connection pool
 * (far faster than the global fetch on loopback), with a fresh AbortSignal per request instead of the
 * SDK transport's shared one (one shared signal with a listener per in-flight request trips Node's
 * MaxListeners warning). It also watches the SSE response streams, which the SDK does not: when the
 * stream of a call ends or breaks, the session learns at once, instead of waiting for a timeout.
 */
export class UpstreamFetch {
  private readonly open = new Set<AbortController>();
  private readonly byCall = new Map<string, AbortController>();
  private closed = false;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly events: UpstreamFetchEvents,
  ) {}

  /** The function to give `StreamableHTTPClientTransport` as its `fetch` option. */
  readonly fetch: FetchLike = async (url, init) => {
    if (this.closed) throw new Error('upstream session closed');
    const controller = new AbortController();
    const method = init?.method ?? 'GET';
    const callId = method === 'POST' && typeof init?.body === 'string' ? CALL_ID_PATTERN.exec(init.body)?.[1] : undefined;
    this.open.add(controller);
    if (callId) this.byCall.set(callId, controller);
    const release = (): void => {
      this.open.delete(controller);
      if (callId && this.byCall.get(callId) === controller) this.byCall.delete(callId);
    };
    let response: Response;
    try {
      const { signal: _shared, ...rest } = init ?? {};
      // undici's fetch and Node's global fetch take the same init shape; their TypeScript types differ.
      response = (await undiciFetch(url, {
        ...(rest as Parameters<typeof undiciFetch>[1]),
        signal: controller.signal,
        dispatcher: this.dispatcher,
      })) as unknown as Response;
    } catch (err) {
      release();
      // An abort is ours (cancellation, session closing), not the node's silence.
      throw controller.signal.aborted ? err : new NoResponseError(err);
    }
    const isStream = (response.headers.get('content-type') ?? '').startsWith('text/event-stream');
    if (!isStream || !response.body) {
      // JSON bodies are read at once by the transport; nothing to watch.
      release();
      return response;
    }
    const onEnd = (end: StreamEnd): void => {
      release();
      if (callId) this.events.onCallStreamEnd(callId, end);
      else if (method === 'GET') this.events.onStandaloneStreamEnd(end);
    };
    return new Response(monitorStream(response.body, onEnd), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };

  /** Closes the HTTP request carrying `callId`, if still open (after a cancellation nobody reads it). */
  abortCall(callId: string): void {
    this.byCall.get(callId)?.abort();
  }

  /** Aborts every open request (the session is closing). */
  abortAll(): void {
    this.closed = true;
    for (const c of this.open) c.abort();
    this.open.clear();
    this.byCall.clear();
  }
}

/** A pass-through copy of `body` that reports once when it ends, breaks or is cancelled. */
function monitorStream(body: ReadableStream<Uint8Array>, onEnd: (end: StreamEnd) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let reported = false;
  const report = (end: StreamEnd): void => {
    if (reported) return;
    reported = true;
    onEnd(end);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          report({});
        } else {
          controller.enqueue(value);
        }
      } catch (err) {
        controller.error(err);
        report({ error: err instanceof Error ? err : new Error(String(err)) });
      }
    },
    async cancel(reason) {
      report({});
      await reader.cancel(reason).catch(() => {});
    },
  });
}
