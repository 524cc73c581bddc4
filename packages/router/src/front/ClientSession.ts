import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CompleteRequestSchema,
  CompleteResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  GetPromptResultSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  ReadResourceResultSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CompleteResult,
  type LoggingLevel,
  type RequestId,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { Catalog } from '../catalog/Catalog.js';
import type { CatalogChange } from '../catalog/CatalogEntries.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { invalidArguments, unknownPrompt, unknownResource, unknownTool } from '../errors/routingErrors.js';
import type { CallForwarder } from '../forwarding/CallForwarder.js';
import { UNKNOWN_TOOL, type CallObserver } from '../forwarding/CallObserver.js';
import type { ResourceSubscriber, ResourceSubscriptions } from '../forwarding/ResourceSubscriptions.js';
import { ClientDisconnectedError, type ClientCallContext } from '../forwarding/ClientCallContext.js';
import { listPage } from './ListPage.js';
import type { ToolArgumentValidator } from './ToolArgumentValidator.js';

/** What every client session shares. */
export interface ClientSessionDeps {
  catalog: Catalog;
  forwarder: CallForwarder;
  validator: ToolArgumentValidator;
  subscriptions: ResourceSubscriptions;
  logger: Logger;
  /** Hears tool calls refused before dispatch (metrics). */
  observer?: CallObserver;
  /** Called once the client's initialize request assigned the session id. */
  onInitialized(session: ClientSession): void;
  /** Called once the session is gone (DELETE, idle, router stop). */
  onClosed(session: ClientSession): void;
}

const SERVER_INFO = { name: 'flotilla-router', version: '0.1.0' };

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * One MCP client session on the router's front: an SDK low-level `Server` on its own Streamable HTTP
 * transport (stateful, SSE responses). Lists come from the merged catalog; calls are forwarded to
 * replicas. Tracks which JSON-RPC requests arrived on which HTTP request, because a client that just
 * drops its connection does not abort the SDK handler's signal.
 */
export class ClientSession implements ResourceSubscriber {
  readonly server: Server;
  readonly transport: StreamableHTTPServerTransport;
  private level: LoggingLevel | undefined;
  /** Per in-flight JSON-RPC request: aborted when the HTTP request that carried it is dropped. */
  private readonly connectionSignals = new Map<RequestId, AbortSignal>();
  private openHttpRequests = 0;
  private lastActivity = Date.now();
  private closed = false;

  constructor(private readonly deps: ClientSessionDeps) {
    this.server = new Server(SERVER_INFO, {
      capabilities: {
        tools: { listChanged: true },
        resources: { listChanged: true, subscribe: true },
        prompts: { listChanged: true },
        completions: {},
        logging: {},
      },
      instructions: 'Flotilla router: one MCP endpoint for every server hosted in the mesh. Tools and prompts are named <server>_<name>.',
    });
    this.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: () => deps.onInitialized(this),
    });
    this.transport.onerror = (err) => deps.logger.debug({ err, sessionId: this.sessionId }, 'client transport error');
    this.server.onclose = () => this.onClosed();
    this.installHandlers();
  }

  get sessionId(): string | undefined {
    return this.transport.sessionId;
  }

  async start(): Promise<void> {
    await this.server.connect(this.transport);
  }

  /** Whether the session saw no HTTP traffic for `idleMs` and holds no open stream. */
  idleFor(idleMs: number, now = Date.now()): boolean {
    return this.openHttpRequests === 0 && now - this.lastActivity > idleMs;
  }

  /**
   * Hands one HTTP request to the session's transport. `requestIds` are the JSON-RPC requests in its
   * (already parsed) body: if the client drops the connection before they are answered, they are
   * cancelled upstream.
   */
  async handle(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown, requestIds: RequestId[] = []): Promise<void> {
    this.lastActivity = Date.now();
    this.openHttpRequests++;
    const gone = new AbortController();
    for (const id of requestIds) this.connectionSignals.set(id, gone.signal);
    res.once('close', () => {
      this.openHttpRequests--;
      this.lastActivity = Date.now();
      if (!res.writableFinished && requestIds.length) {
        this.deps.logger.info({ sessionId: this.sessionId, requestIds }, 'client dropped its connection; cancelling its calls');
        gone.abort(new ClientDisconnectedError());
      }
      for (const id of requestIds) if (this.connectionSignals.get(id) === gone.signal && !gone.signal.aborted) this.connectionSignals.delete(id);
    });
    await this.transport.handleRequest(req, res, parsedBody);
  }

  /** Tells the client which lists changed (on its standalone SSE stream). */
  notifyListChanged(change: CatalogChange): void {
    if (this.closed || !this.sessionId) return;
    const send = (p: Promise<void>): void => {
      p.catch((err: unknown) => this.deps.logger.debug({ err, sessionId: this.sessionId }, 'could not send list_changed'));
    };
    if (change.tools) send(this.server.sendToolListChanged());
    if (change.resources) send(this.server.sendResourceListChanged());
    if (change.prompts) send(this.server.sendPromptListChanged());
  }

  sendResourceUpdated(uri: string): void {
    if (this.closed) return;
    this.server.sendResourceUpdated({ uri }).catch((err: unknown) => this.deps.logger.debug({ err, sessionId: this.sessionId }, 'could not send resources/updated'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.transport.close().catch(() => {});
    this.onClosed();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.connectionSignals.clear();
    this.deps.subscriptions.removeSubscriber(this);
    this.deps.onClosed(this);
  }

  private installHandlers(): void {
    const { catalog, forwarder, validator } = this.deps;
    const server = this.server;

    server.setRequestHandler(SetLevelRequestSchema, (request) => {
      this.level = request.params.level;
      return {};
    });

    server.setRequestHandler(ListToolsRequestSchema, (request) => {
      const page = listPage(catalog.listTools().map((t) => t.definition), request.params?.cursor);
      return { tools: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    });

    server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
      const started = performance.now();
      const { name, arguments: args } = request.params;
      const refused = (label: string): void => this.deps.observer?.finished(label, undefined, 'invalid_request', (performance.now() - started) / 1000);
      const tool = catalog.tool(name);
      if (!tool) {
        refused(UNKNOWN_TOOL);
        throw unknownTool(name);
      }
      const check = validator.check(tool.definition, args);
      if (!check.ok) {
        refused(name);
        throw invalidArguments(name, check.problems);
      }
      return forwarder.forward({
        target: name,
        server: tool.server,
        replicas: tool.replicas,
        request: { method: 'tools/call', params: { ...request.params, name: tool.upstreamName } },
        resultSchema: CallToolResultSchema,
        retryAfterAcceptance: tool.retryableAfterAcceptance,
        client: this.callContext(extra),
      });
    });

    server.setRequestHandler(ListResourcesRequestSchema, (request) => {
      const page = listPage(catalog.listResources().map((r) => r.definition), request.params?.cursor);
      return { resources: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    });

    server.setRequestHandler(ListResourceTemplatesRequestSchema, (request) => {
      const page = listPage(catalog.listResourceTemplates().map((t) => t.definition), request.params?.cursor);
      return { resourceTemplates: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    });

    server.setRequestHandler(ReadResourceRequestSchema, (request, extra) => {
      const route = catalog.routeResource(request.params.uri);
      if (!route) throw unknownResource(request.params.uri);
      return forwarder.forward({
        target: request.params.uri,
        server: route.server,
        replicas: route.replicas,
        request: { method: 'resources/read', params: request.params },
        resultSchema: ReadResourceResultSchema,
        retryAfterAcceptance: true,
        client: this.callContext(extra),
      });
    });

    server.setRequestHandler(SubscribeRequestSchema, async (request) => {
      await this.deps.subscriptions.subscribe(this, request.params.uri);
      return {};
    });

    server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
      await this.deps.subscriptions.unsubscribe(this, request.params.uri);
      return {};
    });

    server.setRequestHandler(ListPromptsRequestSchema, (request) => {
      const page = listPage(catalog.listPrompts().map((p) => p.definition), request.params?.cursor);
      return { prompts: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    });

    server.setRequestHandler(GetPromptRequestSchema, (request, extra) => {
      const prompt = catalog.prompt(request.params.name);
      if (!prompt) throw unknownPrompt(request.params.name);
      return forwarder.forward({
        target: prompt.name,
        server: prompt.server,
        replicas: prompt.replicas,
        request: { method: 'prompts/get', params: { ...request.params, name: prompt.upstreamName } },
        resultSchema: GetPromptResultSchema,
        retryAfterAcceptance: true,
        client: this.callContext(extra),
      });
    });

    server.setRequestHandler(CompleteRequestSchema, async (request, extra): Promise<CompleteResult> => {
      const ref = request.params.ref;
      let route: { target: string; server: string; replicas: readonly string[]; ref: typeof ref } | undefined;
      if (ref.type === 'ref/prompt') {
        const prompt = catalog.prompt(ref.name);
        if (!prompt) throw unknownPrompt(ref.name);
        route = { target: prompt.name, server: prompt.server, replicas: prompt.replicas, ref: { ...ref, name: prompt.upstreamName } };
      } else {
        const template = catalog.resourceTemplate(ref.uri);
        const target = template ?? catalog.routeResource(ref.uri);
        if (!target) throw unknownResource(ref.uri);
        route = { target: ref.uri, server: target.server, replicas: target.replicas, ref };
      }
      try {
        return await forwarder.forward({
          target: route.target,
          server: route.server,
          replicas: route.replicas,
          request: { method: 'completion/complete', params: { ...request.params, ref: route.ref } },
          resultSchema: CompleteResultSchema,
          retryAfterAcceptance: true,
          client: this.callContext(extra),
        });
      } catch (err) {
        // A server without completion support has nothing to suggest; that is not an error for the client.
        if (err instanceof JsonRpcError && err.code === ErrorCode.MethodNotFound) return { completion: { values: [], hasMore: false } };
        throw err;
      }
    });
  }

  private callContext(extra: Extra): ClientCallContext {
    const connection = this.connectionSignals.get(extra.requestId);
    this.connectionSignals.delete(extra.requestId);
    const signal = connection ? AbortSignal.any([extra.signal, connection]) : extra.signal;
    const meta = extra._meta as Record<string, unknown> | undefined;
    return {
      sessionId: this.sessionId ?? '',
      requestId: extra.requestId,
      signal,
      meta,
      progressToken: extra._meta?.progressToken,
      sendNotification: (n) => extra.sendNotification(n),
      sendRequest: (r, schema, options) => extra.sendRequest(r, schema, options),
      clientCapabilities: () => this.server.getClientCapabilities(),
      logLevel: () => this.level,
    };
  }
}
