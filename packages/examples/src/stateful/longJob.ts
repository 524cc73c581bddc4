import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestTaskStore } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { SessionTaskStore } from './SessionTaskStore.js';
import { sleep } from '../sleep.js';

/** How often clients are told to poll a `long_job` task, ms. */
export const TASK_POLL_INTERVAL_MS = 100;
/** TTL of a task when the client asks for none, ms. */
export const DEFAULT_TASK_TTL_MS = 5 * 60_000;
/** Longest TTL granted, ms. */
export const MAX_TASK_TTL_MS = 60 * 60_000;

/** What `long_job` needs of its session. */
export interface LongJobSession {
  store: SessionTaskStore;
  sessionId: string;
  /** Aborted all at once when the session ends. */
  jobs: Set<AbortController>;
  /** Sends `notifications/tasks/status` for a task the client cancelled. */
  notifyStatus(taskId: string): Promise<void>;
}

interface Job {
  steps: number;
  stepMs: number;
  failAt: number | undefined;
}

/** Abort reason of a job whose task was cancelled with `tasks/cancel`. */
class TaskCancelled extends Error {}

/**
 * Registers `long_job`: a task-only tool (`execution.taskSupport: 'required'`, MCP 2025-11-25 tasks).
 * A call must be task-augmented; it answers at once with a `CreateTaskResult`, and the work runs behind
 * it: `steps` × `stepMs`, a `working` status with "step i of n" after each step (each one a
 * `notifications/tasks/status`), then `completed` with the result, or `failed` at step `failAt`.
 * `tasks/cancel` stops it at once.
 */
export function registerLongJob(server: McpServer, session: LongJobSession): void {
  server.experimental.tasks.registerToolTask(
    'long_job',
    {
      title: 'Long job (task)',
      description: 'Runs steps × stepMs ms as a task (call it task-augmented): poll tasks/get, fetch tasks/result, or tasks/cancel it. failAt makes it fail at that step.',
      inputSchema: {
        steps: z.number().int().min(1).max(1000).default(5).describe('Number of steps'),
        stepMs: z.number().int().min(0).max(60_000).default(100).describe('Duration of one step, ms'),
        failAt: z.number().int().min(1).optional().describe('Fail (task status failed) at this step'),
      },
      annotations: { readOnlyHint: false, idempotentHint: false, openWorldHint: false },
      execution: { taskSupport: 'required' },
    },
    {
      createTask: async ({ steps, stepMs, failAt }, extra) => {
        const ttl = Math.min(extra.taskRequestedTtl ?? DEFAULT_TASK_TTL_MS, MAX_TASK_TTL_MS);
        const task = await extra.taskStore.createTask({ ttl, pollInterval: TASK_POLL_INTERVAL_MS });
        void runJob(task.taskId, { steps, stepMs, failAt }, extra.taskStore, session);
        return { task };
      },
      getTask: (_args, extra) => extra.taskStore.getTask(extra.taskId),
      getTaskResult: async (_args, extra) => (await extra.taskStore.getTaskResult(extra.taskId)) as CallToolResult,
    },
  );
}

/** The work behind one task; every outcome ends in the task store (or nowhere, if the session ended). */
async function runJob(taskId: string, job: Job, tasks: RequestTaskStore, session: LongJobSession): Promise<void> {
  const abort = new AbortController();
  session.jobs.add(abort);
  const unhook = session.store.onCancelled(taskId, () => abort.abort(new TaskCancelled(`task ${taskId} cancelled`)));
  try {
    for (let step = 1; step <= job.steps; step++) {
      await sleep(job.stepMs, abort.signal);
      if (job.failAt === step) {
        await tasks.storeTaskResult(taskId, 'failed', { content: [{ type: 'text', text: `long_job failed at step ${step} of ${job.steps} (failAt)` }], isError: true });
        return;
      }
      if (step < job.steps) await tasks.updateTaskStatus(taskId, 'working', `step ${step} of ${job.steps}`);
    }
    const result = { steps: job.steps, stepMs: job.stepMs, sessionId: session.sessionId };
    await tasks.storeTaskResult(taskId, 'completed', { content: [{ type: 'text', text: `long_job done: ${job.steps} steps of ${job.stepMs} ms` }], structuredContent: result });
  } catch {
    // Cancelled: tell the client (the SDK's tasks/cancel sends no status notification). Otherwise the
    // session ended, or the task expired under the job: nobody is left to tell.
    if (abort.signal.reason instanceof TaskCancelled) await session.notifyStatus(taskId).catch(() => {});
  } finally {
    unhook();
    session.jobs.delete(abort);
  }
}
