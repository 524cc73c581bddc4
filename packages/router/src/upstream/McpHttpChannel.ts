import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { sanitizeUpstreamText } from './sanitizeUpstreamText.js';
import type { ToolSchemaGuard } from './ToolSchemaGuard.js';
import { SseMessageStream } from './SseMessageStream.js';
import { parseServerMessages, type ServerMessage } from './ServerMessage.js';

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

/**
 * The node answered with an HTTP error status. `rpcError` is the JSON-RPC error its body carried, if any
 * (an agent's 503 says why); anything else in the body is not kept: it may be an HTML page naming
 * internal hosts, which must not reach clients.
 */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly rpcError: { readonly code: number; readonly message: string } | undefined,
  ) {
    // Only the status, its standard phrase and a sanitised JSON-RPC message: never a body (an HTML page
    // from a proxy names internal hosts).
    const phrase = STATUS_CODES[status];
    super(`HTTP ${status}${phrase ? ` ${phrase}` : ''}${rpcError ? `: ${rpcError.message}` : ''}`);
    this.name = 'HttpStatusError';
  }
}

/** What a POST got back. */
export type PostReply =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'messages'; readonly messages: ServerMessage[] }
  | { readonly kind: 'stream'; readonly stream: SseMessageStream };

/**
 * What every upstream session shares: the dispatchers it sends over (calls share a bounded keep-alive
 * pool; long-lived streams get their own), the mesh credential, and the bounds on what servers declare.
 */
export interface UpstreamDispatchers {
  /** POSTs and DELETEs. */
  readonly calls: Dispatcher;
  /** The standalone GET streams, which stay open for a session's life and must not take the calls' connections. */
  readonly streams: Dispatcher;
  /** Adds the mesh credential to every request to a node; none without it. */
  readonly credentials?: MeshCredentialProvider;
  /** Keeps tools beyond the router's bounds out of every session's listings (see `readTools`). */
  readonly toolSchemas?: ToolSchemaGuard;
}

/** One request to a node, as a {@link MeshCredentialProvider} sees it. */
export interface MeshRequest {
  /** The node's origin (from its announced base URL). */
  readonly origin: string;
  /** The hosted server's path, e.g. `/mcp/echo`. */
  readonly path: string;
  /** The JSON-RPC message of a POST (a credential may name its tool). */
  readonly message?: unknown;
  /** The client identity the session speaks for, when the front door knows it. */
  readonly identity?: string;
}

/** Gives the headers that prove to an agent that a request comes from this mesh (e.g. `Authorization: Bearer <mesh token>`). */
export interface MeshCredentialProvider {
  headers(request: MeshRequest): Promise<Record<string, string>>;
}

/** Largest JSON body read from a node, bytes. */
const MAX_JSON_BODY_BYTES = 64 * 1024 * 1024;
/** Largest error body read to find a JSON-RPC error in it, bytes. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * The HTTP side of one upstream MCP session (Streamable HTTP, client role): POSTs messages, opens the
 * standalone GET stream, ends the session with DELETE. Responses come back as parsed, checked messages
 * (a JSON body) or as an {@link SseMessageStream}. Uses undici's `request` over shared dispatchers: no
 * `fetch`, no web streams.
 */
export class McpHttpChannel {
  readonly origin: string;
  readonly path: string;
  /** Set from the `Mcp-Session-Id` header of the initialize answer. */
  sessionId: string | undefined;
  /** Sent as `Mcp-Protocol-Version` once negotiated. */
  protocolVersion: string | undefined;

  constructor(
    url: URL,
    private readonly dispatchers: UpstreamDispatchers,
    /** The client identity this session speaks for (mesh tokens carry it). */
    private readonly identity?: string,
  ) {
    this.origin = url.origin;
    this.path = `${url.pathname}${url.search}`;
  }

  /** POSTs one JSON-RPC message. Rejects with {@link NoResponseError}, {@link HttpStatusError} or the abort reason. */
  async post(message: unknown, signal?: AbortSignal): Promise<PostReply> {
    const response = await this.send(this.dispatchers.calls, {
      method: 'POST',
      headers: await this.headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, message),
      body: JSON.stringify(message),
      ...(signal ? { signal } : {}),
    });
    const { statusCode, headers, body } = response;
    if (statusCode >= 400) throw await statusError(response);
    const sessionId = headerValue(headers, 'mcp-session-id');
    if (sessionId !== undefined && this.sessionId === undefined) this.sessionId = sessionId;
    const type = (headerValue(headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (statusCode === 202 || (type !== 'application/json' && type !== 'text/event-stream')) {
      body.resume();
      return { kind: 'accepted' };
    }
    if (type === 'text/event-stream') return { kind: 'stream', stream: new SseMessageStream(body) };
    return { kind: 'messages', messages: parseServerMessages(await readText(body, MAX_JSON_BODY_BYTES)) };
  }

  /**
   * Opens the standalone GET stream (resuming after `lastEventId` when given). Resolves undefined when the
   * server offers none (405).
   */
  async openStream(signal: AbortSignal, lastEventId?: string): Promise<SseMessageStream | undefined> {
    const extra: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== undefined) extra['last-event-id'] = lastEventId;
    const response = await this.send(this.dispatchers.streams, { method: 'GET', headers: await this.headers(extra), signal });
    if (response.statusCode === 405) {
      response.body.resume();
      return undefined;
    }
    if (response.statusCode >= 400) throw await statusError(response);
    return new SseMessageStream(response.body);
  }

  /** Ends the session on the node (DELETE); best effort within `timeoutMs`. */
  async terminate(timeoutMs: number): Promise<void> {
    if (this.sessionId === undefined) return;
    const response = await this.send(this.dispatchers.calls, { method: 'DELETE', headers: await this.headers({}), signal: AbortSignal.timeout(timeoutMs) });
    response.body.resume();
  }

  private async headers(extra: Record<string, string>, message?: unknown): Promise<Record<string, string>> {
    const headers = extra;
    if (this.sessionId !== undefined) headers['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion !== undefined) headers['mcp-protocol-version'] = this.protocolVersion;
    const credentials = this.dispatchers.credentials;
    if (credentials) Object.assign(headers, await credentials.headers({ origin: this.origin, path: this.path, message, ...(this.identity !== undefined ? { identity: this.identity } : {}) }));
    return headers;
  }

  private async send(dispatcher: Dispatcher, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
    try {
      return await dispatcher.request({ origin: this.origin, path: this.path, ...options });
    } catch (err) {
      // An abort is ours (cancellation, session closing), not the node's silence.
      if (options.signal && (options.signal as AbortSignal).aborted) throw err;
      throw new NoResponseError(err);
    }
  }
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function statusError(response: Dispatcher.ResponseData): Promise<HttpStatusError> {
  let rpcError: { code: number; message: string } | undefined;
  try {
    const text = await readText(response.body, MAX_ERROR_BODY_BYTES);
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'number' && typeof error.message === 'string') {
      rpcError = { code: error.code, message: sanitizeUpstreamText(error.message) ?? 'error' };
    }
  } catch {
    // Not a JSON-RPC error body: the status alone is reported.
  }
  return new HttpStatusError(response.statusCode, rpcError);
}

/** Reads a whole body as text, refusing more than `limit` bytes. */
async function readText(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      body.destroy();
      throw new Error(`response body over ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
