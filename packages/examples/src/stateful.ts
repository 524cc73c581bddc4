/**
 * Example server `stateful` (SDK `McpServer` per session via the default-exported factory): everything it
 * keeps belongs to one MCP session, so two clients can prove they are isolated from each other, directly
 * or through a router.
 *
 * - `whoami`: node id, this session's own id, and what the server sees of the client (clientInfo,
 *   capabilities, log level).
 * - logging: `log_burst` sends one message per level during the call; `ticks_start`/`ticks_stop` run a
 *   session timer that sends unrelated log messages (and `resources/updated` for subscribed notes) on the
 *   session's standalone stream. `logging/setLevel` applies to this session only.
 * - notes: `note_put` creates `note://<name>`, listed and readable only in this session (an unknown note
 *   is `-32002` Resource not found); `resources/subscribe` gets `notifications/resources/updated`.
 * - client-dependent tools, listed only when the client declared the capability: `roots_show` (roots, and
 *   a count of `notifications/roots/list_changed`), `ask_llm` (sampling), `ask_user` (elicitation).
 * - tasks: `long_job` is task-only (`taskSupport: 'required'`); tasks live in this session's own store.
 *
 * The node id comes from the factory's argument (the agent passes `{ nodeId, server }`), else from
 * `FLOTILLA_NODE_ID`, else `unknown`.
 */
import { randomUUID } from 'node:crypto';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, RootsListChangedNotificationSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { offerToClient, registerClientTools } from './stateful/clientTools.js';
import { registerLongJob } from './stateful/longJob.js';
import { ProtocolError, jsonResult, toolError } from './stateful/results.js';
import { LOG_LEVELS, SessionLog } from './stateful/SessionLog.js';
import { NOTE_NAME_PATTERN, SessionNotes, noteName } from './stateful/SessionNotes.js';
import { SessionTaskStore } from './stateful/SessionTaskStore.js';
import { SessionTicks } from './stateful/SessionTicks.js';

/** The MCP error code for an unknown resource (spec 2025-11-25, resources: "Resource not found"). */
export const RESOURCE_NOT_FOUND = -32002;

/** Options of {@link createStatefulServer}; the agent passes its factory context, which fits. */
export interface StatefulServerOptions {
  /** Reported by `whoami`; default `FLOTILLA_NODE_ID`, else `unknown`. */
  nodeId?: string;
}

const INSTRUCTIONS = [
  'Stateful example server: everything it keeps (log level, notes, subscriptions, ticks, roots count, tasks) belongs to this MCP session only.',
  'Call whoami to see which node and session answer. note_put creates note://<name> resources; ticks_start/ticks_stop run a session timer.',
  'long_job must be called as a task (tools/call with a task field), then followed with tasks/get, tasks/result or tasks/cancel.',
].join(' ');

/** Builds one `stateful` server: one per MCP session, holding that session's state. */
export function createStatefulServer(options: StatefulServerOptions = {}): McpServer {
  const nodeId = options.nodeId ?? process.env.FLOTILLA_NODE_ID ?? 'unknown';
  const sessionId = randomUUID();
  const store = new SessionTaskStore();
  const server = new McpServer(
    { name: 'stateful', version: '0.1.0' },
    {
      capabilities: {
        logging: {},
        resources: { subscribe: true, listChanged: true },
        tools: { listChanged: true },
        tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
      },
      taskStore: store,
      instructions: INSTRUCTIONS,
    },
  );
  const low = server.server;
  const log = new SessionLog(low);
  const notes = new SessionNotes();
  const jobs = new Set<AbortController>();
  let rootsListChanged = 0;
  const quietly = (work: Promise<unknown>): void => void work.catch(() => {});

  const ticks = new SessionTicks((tick) => {
    quietly(log.send('info', 'ticks', { tick, sessionId }));
    for (const uri of notes.subscribed()) quietly(low.sendResourceUpdated({ uri }));
  });

  server.registerTool(
    'whoami',
    {
      title: 'Who am I talking to',
      description: "This server's node id and session id, and what it sees of the client: clientInfo, declared capabilities, log level.",
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    (extra) =>
      jsonResult({
        server: 'stateful',
        nodeId,
        sessionId,
        mcpSessionId: extra.sessionId ?? null,
        client: low.getClientVersion() ?? null,
        capabilities: low.getClientCapabilities() ?? {},
        logLevel: log.current ?? null,
      }),
  );

  server.registerTool(
    'log_burst',
    {
      title: 'Log burst',
      description: 'Sends one log message per level (debug … emergency) during this call, tagged with `tag`; the session log level filters them.',
      inputSchema: { tag: z.string().min(1).max(200).default('burst').describe('Put in every message') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ tag }, extra) => {
      const sent: string[] = [];
      const suppressed: string[] = [];
      for (const level of LOG_LEVELS) {
        const ok = await log.send(level, 'log_burst', { tag, level, sessionId }, extra.requestId);
        (ok ? sent : suppressed).push(level);
      }
      return jsonResult({ tag, sent, suppressed, logLevel: log.current ?? null });
    },
  );

  server.registerTool(
    'ticks_start',
    {
      title: 'Start ticks',
      description: "Starts this session's timer: every intervalMs a log message (logger 'ticks') and resources/updated for each subscribed note, on the session's own stream.",
      inputSchema: { intervalMs: z.number().int().min(10).max(60_000).default(1000).describe('Tick period, ms') },
      annotations: { readOnlyHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ intervalMs }) => (ticks.start(intervalMs) ? jsonResult({ started: true, intervalMs }) : toolError('ticks are already running in this session; call ticks_stop first')),
  );

  server.registerTool(
    'ticks_stop',
    {
      title: 'Stop ticks',
      description: "Stops this session's timer and tells how many ticks it sent; an error if this session's timer is not running.",
      annotations: { readOnlyHint: false, idempotentHint: false, openWorldHint: false },
    },
    () => {
      const stopped = ticks.stop();
      return stopped.ok ? jsonResult({ stopped: true, ticks: stopped.ticks }) : toolError(stopped.reason);
    },
  );

  server.registerTool(
    'note_put',
    {
      title: 'Put a note',
      description: 'Creates or replaces the note note://<name>, visible only in this session (resources/list, resources/read, resources/subscribe).',
      inputSchema: {
        name: z.string().regex(NOTE_NAME_PATTERN, 'letters, digits, "_" or "-", at most 64').describe('Note name'),
        text: z.string().max(65_536).describe('Note text'),
      },
      annotations: { readOnlyHint: false, idempotentHint: true, openWorldHint: false },
    },
    ({ name, text }) => {
      const put = notes.put(name, text);
      if (!put.ok) return toolError(put.reason);
      if (put.created) server.sendResourceListChanged();
      if (notes.isSubscribed(put.uri)) quietly(low.sendResourceUpdated({ uri: put.uri }));
      return jsonResult({ uri: put.uri, created: put.created, version: put.version });
    },
  );

  server.registerResource(
    'notes',
    new ResourceTemplate('note://{name}', { list: () => ({ resources: notes.list() }) }),
    { title: 'Session notes', description: 'Notes created with note_put in this session', mimeType: 'text/plain' },
    (uri, variables) => {
      const note = notes.get(String(variables.name));
      if (!note) throw new ProtocolError(RESOURCE_NOT_FOUND, `Resource not found: ${uri.href}`, { uri: uri.href });
      return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: note.text }] };
    },
  );

  const noteUriOf = (uri: string): string => {
    if (noteName(uri) === undefined) throw new ProtocolError(ErrorCode.InvalidParams, `only note://<name> resources can be subscribed to, not ${uri}`);
    return uri;
  };
  low.setRequestHandler(SubscribeRequestSchema, (request) => {
    notes.subscribe(noteUriOf(request.params.uri));
    return {};
  });
  low.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    notes.unsubscribe(noteUriOf(request.params.uri));
    return {};
  });
  low.setNotificationHandler(RootsListChangedNotificationSchema, () => {
    rootsListChanged += 1;
  });

  const clientTools = registerClientTools(server, { rootsListChanged: () => rootsListChanged });
  registerLongJob(server, {
    store,
    sessionId,
    jobs,
    notifyStatus: async (taskId) => {
      const task = await store.getTask(taskId);
      if (task) await low.notification({ method: 'notifications/tasks/status', params: task });
    },
  });

  low.oninitialized = () => offerToClient(clientTools, low.getClientCapabilities() ?? {});
  low.onclose = () => {
    ticks.dispose();
    for (const job of jobs) job.abort(new Error('session closed'));
    store.dispose();
  };
  return server;
}

export default createStatefulServer;
