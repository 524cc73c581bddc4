/**
 * Test clients for the `stateful` example server (and any MCP server): a real SDK `Client` over Streamable
 * HTTP that declares exactly the capabilities it is given handlers for, answers the server's roots,
 * sampling and elicitation requests, and records everything the server sends it (log messages, resource
 * updates, list changes, task statuses), so tests can prove what reached which session. Used against an
 * agent directly and, with the same assertions, through the router.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  TaskStatusNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
  type CreateMessageRequest,
  type CreateMessageResult,
  type CreateTaskResult,
  type ElicitRequest,
  type ElicitResult,
  type LoggingMessageNotification,
  type Root,
  type Task,
} from '@modelcontextprotocol/sdk/types.js';

/** How to connect one test client. */
export interface StatefulClientOptions {
  /** The server's MCP endpoint (an agent's `/mcp/<server>`, or the router's `/mcp`). */
  url: string | URL;
  /** `clientInfo.name` (default `stateful-test-client`); `version` is `1.0.0` unless given. */
  name?: string;
  version?: string;
  /** Declares `roots` (with `listChanged`) and answers `roots/list` with these; change them with `setRoots`. */
  roots?: Root[];
  /** Declares `sampling` and answers `sampling/createMessage` with this. */
  sampling?: (params: CreateMessageRequest['params']) => CreateMessageResult | Promise<CreateMessageResult>;
  /** Declares `elicitation` (form) and answers `elicitation/create` with this. */
  elicitation?: (params: ElicitRequest['params']) => ElicitResult | Promise<ElicitResult>;
  /** More capabilities to declare (e.g. `tasks`), merged over the ones the handlers imply. */
  capabilities?: ClientCapabilities;
  /** HTTP headers on every request (e.g. authorization for a router). */
  headers?: Record<string, string>;
  /** Wait for the session's standalone GET stream before resolving (default true); see {@link StatefulClient.streamOpen}. */
  waitForStream?: boolean;
  /** How long to wait for the stream, ms (default 30000; a safety net, not a timing assertion). */
  streamTimeoutMs?: number;
}

/** A connected test client and what the server sent it. */
export interface StatefulClient {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  /** The capabilities this client declared. */
  readonly capabilities: ClientCapabilities;
  /** `notifications/message` params, in arrival order (call-related and standalone alike). */
  readonly logs: Array<LoggingMessageNotification['params']>;
  /** URIs of `notifications/resources/updated`, in arrival order. */
  readonly resourceUpdates: string[];
  /** `notifications/resources/list_changed` received. */
  readonly counts: { resourceListChanged: number; toolListChanged: number; rootsRequests: number; samplingRequests: number; elicitationRequests: number };
  /** `notifications/tasks/status` params, in arrival order. */
  readonly taskStatuses: Task[];
  /** Resolves once the session's standalone (GET) stream is open, so unrelated notifications can reach it. */
  readonly streamOpen: Promise<void>;
  /** The session id the server gave this client. */
  readonly sessionId: string | undefined;
  /** Replaces the roots and sends `notifications/roots/list_changed`. */
  setRoots(roots: Root[]): Promise<void>;
  /** Calls a tool (not task-augmented) and returns its result, with `structuredContent` typed as `T`. */
  call<T = Record<string, unknown>>(name: string, args?: Record<string, unknown>): Promise<CallToolResult & { structured: T }>;
  /** Calls a tool task-augmented (`params.task`, with `ttl` when given); resolves to the `CreateTaskResult`. */
  startTask(name: string, args?: Record<string, unknown>, ttl?: number): Promise<CreateTaskResult>;
  /** Polls `tasks/get` until the task is terminal (or `until` holds), at most `timeoutMs`; returns the last task. */
  pollTask(taskId: string, options?: { until?: (task: Task) => boolean; timeoutMs?: number }): Promise<Task>;
  /** `tasks/result` of a task, as a tool result. */
  taskResult(taskId: string): Promise<CallToolResult>;
  /** Waits until `check` holds over this client's records (fails naming `what` after `timeoutMs`, default 20 s). */
  waitFor(what: string, check: (c: StatefulClient) => boolean, timeoutMs?: number): Promise<void>;
  /** Ends the session (HTTP DELETE) and closes the client; errors of a server already gone are ignored. */
  close(): Promise<void>;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Connects a test client with the capabilities its options imply; see {@link StatefulClientOptions}. */
export async function connectStatefulClient(options: StatefulClientOptions): Promise<StatefulClient> {
  const capabilities = declaredCapabilities(options);
  const client = new Client({ name: options.name ?? 'stateful-test-client', version: options.version ?? '1.0.0' }, { capabilities });
  let roots = options.roots ?? [];
  const stream = watchStandaloneStream(options.streamTimeoutMs ?? 30_000);
  const transport = new StreamableHTTPClientTransport(new URL(options.url), {
    fetch: stream.fetch,
    ...(options.headers ? { requestInit: { headers: options.headers } } : {}),
  });
  const self: StatefulClient = {
    client,
    transport,
    capabilities,
    logs: [],
    resourceUpdates: [],
    counts: { resourceListChanged: 0, toolListChanged: 0, rootsRequests: 0, samplingRequests: 0, elicitationRequests: 0 },
    taskStatuses: [],
    streamOpen: stream.open,
    get sessionId() {
      return transport.sessionId;
    },
    async setRoots(next) {
      roots = next;
      await client.sendRootsListChanged();
    },
    async call<T>(name: string, args: Record<string, unknown> = {}) {
      const result = (await client.callTool({ name, arguments: args }, CallToolResultSchema, { timeout: 60_000 })) as CallToolResult;
      return { ...result, structured: (result.structuredContent ?? {}) as T };
    },
    startTask(name, args = {}, ttl) {
      return client.request({ method: 'tools/call', params: { name, arguments: args, task: ttl === undefined ? {} : { ttl } } }, CreateTaskResultSchema);
    },
    async pollTask(taskId, { until, timeoutMs = 30_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const task = await client.experimental.tasks.getTask(taskId);
        if (TERMINAL.has(task.status) || until?.(task)) return task;
        if (Date.now() > deadline) throw new Error(`task ${taskId} still ${task.status} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, Math.min(task.pollInterval ?? 100, 500)));
      }
    },
    async taskResult(taskId) {
      return (await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema, { timeout: 60_000 })) as CallToolResult;
    },
    async waitFor(what, check, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!check(self)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      await transport.terminateSession().catch(() => {});
      await client.close().catch(() => {});
    },
  };
  recordNotifications(self);
  answerServerRequests(self, options, () => roots);
  await client.connect(transport);
  if (options.waitForStream ?? true) await stream.open;
  return self;
}

/** The capabilities the options imply. */
function declaredCapabilities(options: StatefulClientOptions): ClientCapabilities {
  return {
    ...(options.roots ? { roots: { listChanged: true } } : {}),
    ...(options.sampling ? { sampling: {} } : {}),
    ...(options.elicitation ? { elicitation: { form: {} } } : {}),
    ...options.capabilities,
  };
}

function recordNotifications(c: StatefulClient): void {
  c.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void c.logs.push(n.params));
  c.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void c.resourceUpdates.push(n.params.uri));
  c.client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void (c.counts.resourceListChanged += 1));
  c.client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (c.counts.toolListChanged += 1));
  c.client.setNotificationHandler(TaskStatusNotificationSchema, (n) => void c.taskStatuses.push(n.params));
}

function answerServerRequests(c: StatefulClient, options: StatefulClientOptions, roots: () => Root[]): void {
  if (options.roots) {
    c.client.setRequestHandler(ListRootsRequestSchema, () => {
      c.counts.rootsRequests += 1;
      return { roots: roots() };
    });
  }
  const sampling = options.sampling;
  if (sampling) {
    c.client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      c.counts.samplingRequests += 1;
      return sampling(request.params);
    });
  }
  const elicitation = options.elicitation;
  if (elicitation) {
    c.client.setRequestHandler(ElicitRequestSchema, (request) => {
      c.counts.elicitationRequests += 1;
      return elicitation(request.params);
    });
  }
}

/**
 * A fetch that notices when the client's standalone GET stream is answered (the SDK opens it after
 * `notifications/initialized`, without telling anyone): notifications not tied to a request reach the
 * client only through it, so tests wait for it before expecting them.
 */
function watchStandaloneStream(timeoutMs: number): { fetch: FetchLike; open: Promise<void> } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const open = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  open.catch(() => {});
  const timer = setTimeout(() => reject(new Error(`the standalone GET stream did not open within ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  const fetchWithWatch: FetchLike = async (url, init) => {
    const response = await fetch(url, init);
    if ((init?.method ?? 'GET') === 'GET') {
      clearTimeout(timer);
      if (response.ok && response.headers.get('content-type')?.includes('text/event-stream')) resolve();
      else reject(new Error(`the standalone GET stream was refused: HTTP ${response.status}`));
    }
    return response;
  };
  return { fetch: fetchWithWatch, open };
}

/** The `structuredContent` of a tool result as `T` (for results not obtained through {@link StatefulClient.call}). */
export function structuredOf<T = Record<string, unknown>>(result: { structuredContent?: unknown }): T {
  return (result.structuredContent ?? {}) as T;
}

/** The text of a tool result's content (text items joined by newlines). */
export function textOf(result: { content?: unknown }): string {
  const content = Array.isArray(result.content) ? (result.content as Array<{ type?: string; text?: string }>) : [];
  return content.map((c) => (c.type === 'text' ? (c.text ?? '') : '')).join('\n');
}
