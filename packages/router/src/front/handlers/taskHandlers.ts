import {
  CancelTaskRequestSchema,
  CancelTaskResultSchema,
  ErrorCode,
  GetTaskPayloadRequestSchema,
  GetTaskPayloadResultSchema,
  GetTaskRequestSchema,
  GetTaskResultSchema,
  ListTasksRequestSchema,
  ListTasksResultSchema,
  type Task,
} from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../../errors/JsonRpcError.js';
import type { ClientCallContext } from '../../forwarding/ClientCallContext.js';
import type { SessionContext } from '../SessionContext.js';
import { listPage } from '../ListPage.js';
import type { NodeBinding } from '../SessionState.js';
import { checkedResult } from './checkedResult.js';

/** Longest one node may take to list its tasks, ms. */
const LIST_TIMEOUT_MS = 15_000;
/** Most pages followed per node when listing tasks. */
const MAX_PAGES = 50;

/** Remembers where a task-augmented call created its task (its `CreateTaskResult` names it). */
export function recordTask(session: SessionContext, result: Record<string, unknown>, where: NodeBinding): void {
  const task = result['task'];
  if (typeof task !== 'object' || task === null) return;
  const taskId = (task as { taskId?: unknown }).taskId;
  if (typeof taskId === 'string' && taskId.length > 0 && taskId.length <= 512) session.state.addTask(taskId, where);
}

/**
 * Tasks (spec 2025-11-25) across the mesh. A task lives on the node whose server created it, in the
 * client's own session there: `tasks/get`, `tasks/result` and `tasks/cancel` go to that node (found from
 * the call that created it, or by asking the client's sessions), never elsewhere. `tasks/list` merges
 * the client's tasks from every server it has a session with.
 */
export function installTaskHandlers(session: SessionContext): void {
  const followUp = async (method: string, params: Record<string, unknown> & { taskId: string }, client: ClientCallContext): Promise<{ result: Record<string, unknown>; server: string }> => {
    const where = session.state.task(params.taskId) ?? (await findTask(session, params.taskId));
    if (!where) throw new JsonRpcError(ErrorCode.InvalidParams, `Unknown task: ${params.taskId}`);
    const result = await session.services.forwarder.forward({
      target: `task ${params.taskId}`,
      server: where.server,
      replicas: [where.nodeId],
      request: { method, params },
      // Reading a task's state or result twice changes nothing; cancelling is not retried on another node anyway.
      retryAfterAcceptance: true,
      client,
      placement: { kind: 'pinned', nodeId: where.nodeId, what: `task ${params.taskId}` },
    });
    return { result, server: where.server };
  };

  session.methods.on('tasks/get', GetTaskRequestSchema.shape.params, async (params, request) => {
    const { result, server: from } = await followUp('tasks/get', params, session.callContext(request));
    return checkedResult(GetTaskResultSchema, result, from);
  });
  session.methods.on('tasks/result', GetTaskPayloadRequestSchema.shape.params, async (params, request) => {
    const { result, server: from } = await followUp('tasks/result', params, session.callContext(request));
    return checkedResult(GetTaskPayloadResultSchema, result, from);
  });
  session.methods.on('tasks/cancel', CancelTaskRequestSchema.shape.params, async (params, request) => {
    const { result, server: from } = await followUp('tasks/cancel', params, session.callContext(request));
    return checkedResult(CancelTaskResultSchema, result, from);
  });

  session.methods.on('tasks/list', ListTasksRequestSchema.shape.params, async (params) => {
    const tasks = await listAllTasks(session);
    const page = listPage(tasks, params?.cursor);
    return { tasks: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });
}

/** The client's sessions whose server lists tasks. */
function taskSessions(session: SessionContext): ReturnType<SessionContext['allOwnSessions']> {
  return session.allOwnSessions().filter((s) => (s.serverCapabilities as { tasks?: unknown }).tasks !== undefined);
}

/** Every task of the client on every server it has a session with, newest first. */
async function listAllTasks(session: SessionContext): Promise<Task[]> {
  const perSession = await Promise.all(
    taskSessions(session).map(async (s) => {
      const tasks: Task[] = [];
      let cursor: string | undefined;
      try {
        for (let page = 0; page < MAX_PAGES; page++) {
          const raw = await s.request('tasks/list', cursor ? { cursor } : undefined, { signal: AbortSignal.timeout(LIST_TIMEOUT_MS * 2), timeoutMs: LIST_TIMEOUT_MS });
          const parsed = ListTasksResultSchema.safeParse(raw);
          if (!parsed.success) break;
          for (const t of parsed.data.tasks) {
            tasks.push(t);
            session.state.addTask(t.taskId, { nodeId: s.nodeId, server: s.server });
          }
          if (!parsed.data.nextCursor || parsed.data.nextCursor === cursor) break;
          cursor = parsed.data.nextCursor;
        }
      } catch (err) {
        session.logger.debug({ err, nodeId: s.nodeId, server: s.server }, 'could not list tasks on a session');
      }
      return tasks;
    }),
  );
  return perSession.flat().sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

/** Asks the client's sessions which of them has `taskId` (a task created before the router learnt where). */
async function findTask(session: SessionContext, taskId: string): Promise<NodeBinding | undefined> {
  for (const s of taskSessions(session)) {
    try {
      await s.request('tasks/get', { taskId }, { signal: AbortSignal.timeout(LIST_TIMEOUT_MS * 2), timeoutMs: LIST_TIMEOUT_MS });
      const where = { nodeId: s.nodeId, server: s.server };
      session.state.addTask(taskId, where);
      return where;
    } catch {
      // Not this session's task (or the session failed): ask the next.
    }
  }
  return undefined;
}
