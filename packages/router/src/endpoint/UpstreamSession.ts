import type { HostedServer } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type ClientRequest,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import type { Dispatcher } from 'undici';
import { emptyListing, type ServerListing } from '../catalog/ServerListing.js';
import type { ServerMessageRelay } from './ServerMessageRelay.js';
import { UpstreamFetch, type StreamEnd } from './UpstreamFetch.js';
import { CallCancelledError, UpstreamFailure, classifyUpstreamError } from './UpstreamFailure.js';

/** The router's version, sent as client info upstream. */
const ROUTER_CLIENT_INFO = { name: 'flotilla-router', version: '0.1.0' };

/**
 * After a call's response stream ends, how long the SDK gets to hand over a response that was in the
 * stream's last bytes before the call is declared lost. Only matters when a node dies mid-call.
 */
const STREAM_END_GRACE_MS = 250;

/** Longest a list fetch may take, and most pages followed per list. */
const LIST_TIMEOUT_MS = 15_000;
const MAX_LIST_PAGES = 200;

/** Callbacks of an {@link UpstreamSession}. */
export interface UpstreamSessionEvents {
  /** The server said one of its lists changed; refetch. */
  onListChanged(session: UpstreamSession): void;
  /** The session stopped working (transport closed, stream and ping failed); its in-flight calls were failed. */
  onLost(session: UpstreamSession, reason: string): void;
}

/** Options of one upstream request. */
export interface UpstreamRequestOptions {
  /** Router-assigned call id, also in `params._meta['flotilla/callId']`. */
  callId: string;
  /** Aborted when the client cancels. */
  signal: AbortSignal;
  onprogress?: (progress: Progress) => void;
  /** No response and no progress for this long fails the call. */
  timeoutMs: number;
  /** Absolute end (epoch ms) of the client's patience: the call is cancelled upstream then, progress or not. */
  deadlineAt?: number;
  /** Called by the node's endpoint when the call leaves the router's per-node queue, with the time it waited there. */
  ondequeued?: (waitMs: number) => void;
}

interface InflightCall {
  readonly controller: AbortController;
  /** Set when the router itself failed the call (stream lost, node gone), so the SDK's abort error is not mistaken for a cancel. */
  failure?: UpstreamFailure;
  graceTimer?: NodeJS.Timeout;
  deadlineTimer?: NodeJS.Timeout;
}

/**
 * One pooled MCP session from the router to one server hosted on one node (`mcpBaseUrl + path`), shared
 * by every client session. It fetches the server's lists, forwards requests with progress and
 * cancellation, hands server-to-client messages to the relay, and watches its streams so a node that
 * dies mid-call fails the call promptly (the SDK client alone would wait for its timeout).
 */
export class UpstreamSession {
  readonly url: string;
  private readonly client: Client;
  private readonly http: UpstreamFetch;
  private readonly inflight = new Map<string, InflightCall>();
  private state: 'new' | 'connected' | 'lost' | 'closed' = 'new';
  private probing = false;

  constructor(
    readonly nodeId: string,
    readonly hosted: HostedServer,
    mcpBaseUrl: string,
    dispatcher: Dispatcher,
    private readonly relay: ServerMessageRelay,
    private readonly events: UpstreamSessionEvents,
    private readonly logger: Logger,
  ) {
    this.url = new URL(hosted.path, mcpBaseUrl.endsWith('/') ? mcpBaseUrl : `${mcpBaseUrl}/`).toString();
    this.http = new UpstreamFetch(dispatcher, {
      onCallStreamEnd: (callId, end) => this.onCallStreamEnd(callId, end),
      onStandaloneStreamEnd: (end) => this.onStandaloneStreamEnd(end),
    });
    this.client = new Client(ROUTER_CLIENT_INFO, {
      // The router answers sampling and elicitation by asking the client that made the call.
      capabilities: { sampling: {}, elicitation: { form: {}, url: {} } },
    });
    this.installHandlers();
  }

  get server(): string {
    return this.hosted.name;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Calls currently in flight on this session. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Opens the session (initialize handshake). */
  async connect(): Promise<void> {
    const transport = new StreamableHTTPClientTransport(new URL(this.url), {
      fetch: this.http.fetch,
      // Reconnecting the notification stream is tried twice, quickly; after that the session is probed.
      reconnectionOptions: { initialReconnectionDelay: 250, maxReconnectionDelay: 2000, reconnectionDelayGrowFactor: 2, maxRetries: 2 },
    });
    this.client.onclose = () => this.markLost(`connection to node ${this.nodeId} closed`);
    this.client.onerror = (error) => this.onTransportError(error);
    await this.client.connect(transport, { timeout: LIST_TIMEOUT_MS });
    if (this.state === 'new') this.state = 'connected';
  }

  /** Fetches every page of tools, resources, resource templates and prompts the server offers. */
  async fetchListing(): Promise<ServerListing> {
    const caps = this.client.getServerCapabilities() ?? {};
    const listing = emptyListing();
    const opts = { timeout: LIST_TIMEOUT_MS };
    const pages = async <T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>): Promise<T[]> => {
      const items: T[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const result = await fetchPage(cursor);
        items.push(...result.items);
        if (!result.nextCursor || result.nextCursor === cursor) break;
        cursor = result.nextCursor;
      }
      return items;
    };
    const params = (cursor: string | undefined) => (cursor ? { cursor } : {});
    if (caps.tools) {
      listing.tools = await pages(async (c) => {
        const r = await this.client.listTools(params(c), opts);
        return { items: r.tools, nextCursor: r.nextCursor };
      });
    }
    if (caps.resources) {
      listing.resources = await pages(async (c) => {
        const r = await this.client.listResources(params(c), opts);
        return { items: r.resources, nextCursor: r.nextCursor };
      });
      listing.resourceTemplates = await pages(async (c) => {
        const r = await this.client.listResourceTemplates(params(c), opts);
        return { items: r.resourceTemplates, nextCursor: r.nextCursor };
      });
    }
    if (caps.prompts) {
      listing.prompts = await pages(async (c) => {
        const r = await this.client.listPrompts(params(c), opts);
        return { items: r.prompts, nextCursor: r.nextCursor };
      });
    }
    return listing;
  }

  /**
   * Forwards one request. Rejects with an {@link UpstreamFailure} for node trouble, a `JsonRpcError` for
   * the server's own error answer, or a {@link CallCancelledError} when the client cancelled.
   */
  async request<S extends AnySchema>(request: ClientRequest, resultSchema: S, options: UpstreamRequestOptions): Promise<SchemaOutput<S>> {
    if (this.state !== 'connected') throw new UpstreamFailure('refused', this.nodeId, `session to ${this.server} is not connected`, false);
    if (options.signal.aborted) throw new CallCancelledError('cancelled by the client');
    const call: InflightCall = { controller: new AbortController() };
    this.inflight.set(options.callId, call);
    const onCancel = (): void => call.controller.abort(new CallCancelledError('cancelled by the client'));
    options.signal.addEventListener('abort', onCancel, { once: true });
    if (options.deadlineAt !== undefined) {
      // The SDK's timeout restarts on every progress notification; a deadline must not.
      call.deadlineTimer = setTimeout(() => {
        const failure = new UpstreamFailure('lost', this.nodeId, 'the call deadline passed', false);
        failure.timedOut = true;
        call.failure ??= failure;
        call.controller.abort(call.failure);
      }, Math.max(0, options.deadlineAt - Date.now()));
    }
    try {
      return await this.client.request(request, resultSchema, {
        signal: call.controller.signal,
        timeout: options.timeoutMs,
        resetTimeoutOnProgress: true,
        // Always ask for progress: it keeps the call's timeout alive and feeds the agent's progress reports.
        onprogress: options.onprogress ?? (() => {}),
      });
    } catch (err) {
      if (call.failure) throw call.failure;
      if (err instanceof StreamableHTTPError && err.code === 404) {
        // The node no longer knows our session (it restarted its server or expired the session): open a new one.
        this.markLost(`node ${this.nodeId} no longer knows the session (HTTP 404)`);
      }
      throw classifyUpstreamError(err, this.nodeId, { cancelled: options.signal.aborted, timeoutMs: options.timeoutMs });
    } finally {
      options.signal.removeEventListener('abort', onCancel);
      if (call.graceTimer) clearTimeout(call.graceTimer);
      if (call.deadlineTimer) clearTimeout(call.deadlineTimer);
      this.inflight.delete(options.callId);
      // A cancelled or failed call's response stream would otherwise stay open until the node ends it.
      if (call.controller.signal.aborted) this.http.abortCall(options.callId);
    }
  }

  /** Whether the server announced resource subscriptions. */
  get supportsSubscriptions(): boolean {
    return this.client.getServerCapabilities()?.resources?.subscribe === true;
  }

  /** Subscribes this session to updates of `uri`; the server's notifications reach the relay. */
  async subscribe(uri: string): Promise<void> {
    if (this.state !== 'connected') throw new UpstreamFailure('refused', this.nodeId, `session to ${this.server} is not connected`, false);
    try {
      await this.client.subscribeResource({ uri }, { timeout: LIST_TIMEOUT_MS });
    } catch (err) {
      throw classifyUpstreamError(err, this.nodeId, { cancelled: false, timeoutMs: LIST_TIMEOUT_MS });
    }
  }

  /** Ends a subscription (best effort: a gone session has no subscriptions anyway). */
  async unsubscribe(uri: string): Promise<void> {
    if (this.state !== 'connected') return;
    await this.client.unsubscribeResource({ uri }, { timeout: LIST_TIMEOUT_MS }).catch(() => {});
  }

  /**
   * Whether the server answers a ping within `timeoutMs`; used by the liveness watchdog. A node whose
   * process is paused (SIGSTOP) keeps its connections open and simply never answers.
   */
  async ping(timeoutMs: number): Promise<boolean> {
    if (this.state !== 'connected') return false;
    try {
      await this.client.ping({ timeout: timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  /** Fails every in-flight call with `failure` (node left, session lost). */
  failInflight(reason: string): void {
    for (const [callId, call] of this.inflight) {
      call.failure ??= new UpstreamFailure('lost', this.nodeId, reason, true);
      call.controller.abort(call.failure);
      this.http.abortCall(callId);
    }
  }

  /** Closes the session; `terminate` also ends it on the node (DELETE), for a graceful router stop. */
  async close(reason: string, terminate = false): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failInflight(reason);
    const transport = this.client.transport;
    if (terminate && transport instanceof StreamableHTTPClientTransport) {
      await Promise.race([transport.terminateSession().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    this.http.abortAll();
    await this.client.close().catch(() => {});
  }

  private installHandlers(): void {
    const origin = { nodeId: this.nodeId, server: this.hosted.name, inflightCallIds: () => [...this.inflight.keys()] };
    const listChanged = (): void => this.events.onListChanged(this);
    this.client.setNotificationHandler(ToolListChangedNotificationSchema, listChanged);
    this.client.setNotificationHandler(ResourceListChangedNotificationSchema, listChanged);
    this.client.setNotificationHandler(PromptListChangedNotificationSchema, listChanged);
    this.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => this.relay.relayLog(n, origin));
    this.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => this.relay.relayResourceUpdated(n, origin));
    this.client.setRequestHandler(CreateMessageRequestSchema, (req, extra) => this.relay.relaySampling(req, origin, extra.signal));
    this.client.setRequestHandler(ElicitRequestSchema, (req, extra) => this.relay.relayElicitation(req, origin, extra.signal));
  }

  private onCallStreamEnd(callId: string, end: StreamEnd): void {
    const call = this.inflight.get(callId);
    if (!call || call.controller.signal.aborted) return;
    // The response may be in the stream's last bytes, still inside the SDK's parser: give it a moment.
    call.graceTimer = setTimeout(() => {
      if (this.inflight.get(callId) !== call || call.controller.signal.aborted) return;
      const how = end.error ? `connection to node ${this.nodeId} lost during the call (${end.error.message})` : `node ${this.nodeId} closed the call's stream without answering`;
      call.failure = new UpstreamFailure('lost', this.nodeId, how, true);
      call.controller.abort(call.failure);
    }, STREAM_END_GRACE_MS);
    call.graceTimer.unref();
  }

  private onStandaloneStreamEnd(end: StreamEnd): void {
    if (this.state !== 'connected') return;
    this.logger.debug({ nodeId: this.nodeId, server: this.server, err: end.error }, 'upstream notification stream ended; probing');
    void this.probe();
  }

  private onTransportError(error: Error): void {
    if (this.state !== 'connected') return;
    this.logger.debug({ nodeId: this.nodeId, server: this.server, err: error }, 'upstream transport error');
    // The SDK gives up on the notification stream after its retries; list_changed would be missed from now on.
    if (/Maximum reconnection attempts|Failed to open SSE stream/i.test(error.message)) void this.probe();
  }

  /** Checks whether the server still answers; if not, the session is lost. */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await this.client.ping({ timeout: 3000 });
    } catch (err) {
      this.markLost(`connection to node ${this.nodeId} lost: it stopped answering (${err instanceof Error ? err.message : String(err)})`);
    } finally {
      this.probing = false;
    }
  }

  private markLost(reason: string): void {
    if (this.state !== 'connected') return;
    this.state = 'lost';
    this.failInflight(reason);
    this.events.onLost(this, reason);
  }
}
