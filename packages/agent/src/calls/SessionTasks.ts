import type { JSONRPCErrorResponse, JSONRPCRequest, JSONRPCResultResponse, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** Where a session's open tasks are counted node-wide (the {@link CallTracker}). */
export interface TaskCounter {
  taskOpened(server: string): void;
  taskEnded(server: string): void;
}

/** A task not heard of (no status, no poll) for this long is forgotten when it has no TTL, ms. */
export const UNBOUNDED_TASK_FORGET_MS = 60 * 60_000;
/** Task requests awaiting their response that a session remembers at most. */
const MAX_PENDING = 1024;

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const TASK_METHODS = new Set(['tasks/get', 'tasks/result', 'tasks/cancel', 'tasks/list']);
/** JSON-RPC "Invalid params": what a server answers for a task it does not know (spec 2025-11-25). */
const INVALID_PARAMS = -32602;

/** The fields of an MCP `Task` the agent reads. */
const TaskSchema = z.looseObject({
  taskId: z.string().min(1),
  status: z.string(),
  ttl: z.number().nonnegative().nullable().optional().catch(undefined),
  createdAt: z.string().optional().catch(undefined),
});
const TaskParamsSchema = z.looseObject({ taskId: z.string().min(1) });
const CreatedSchema = z.looseObject({ task: TaskSchema });
const ListedSchema = z.looseObject({ tasks: z.array(z.unknown()) });

interface OpenTask {
  tool: string;
  /** Epoch ms after which the task is forgotten unless heard of again. */
  forgetAt: number;
  /** Set when the TTL bounds the task's life (it cannot outlive creation + TTL). */
  bounded: boolean;
}

interface PendingRequest {
  method: string;
  taskId: string | undefined;
}

function keyOf(id: RequestId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/**
 * The MCP tasks (2025-11-25) of one session that the agent saw created (a task-augmented `tools/call`
 * answered with a `CreateTaskResult`) and has not yet seen end. The work of a task runs after its
 * `tools/call` was answered, outside the call's slot, so the agent follows each task on the wire to count
 * it: a `working` or `input_required` task is open; it ends on a terminal status (in
 * `notifications/tasks/status`, or the answer to `tasks/get`, `tasks/cancel` or `tasks/list`), on the
 * answer to `tasks/result` (only given once the task is terminal), on "not found" (`-32602`) for it, at
 * creation + TTL (the server deletes it then), an hour after it was last heard of when it has no TTL, or
 * when the session closes.
 */
export class SessionTasks {
  private readonly open = new Map<string, OpenTask>();
  private readonly pending = new Map<string, PendingRequest>();
  private endedAt = 0;

  constructor(
    private readonly server: string,
    private readonly counter: TaskCounter,
  ) {}

  /** Open tasks of this session. */
  get size(): number {
    return this.open.size;
  }

  /** Epoch ms when a task of this session last ended (0 if none did): the session was busy until then. */
  get lastEndedAt(): number {
    return this.endedAt;
  }

  /** The answer to a task-augmented `tools/call` of `tool`: opens its task; returns its id. */
  created(result: unknown, tool: string, now = Date.now()): string | undefined {
    const parsed = CreatedSchema.safeParse(result);
    if (!parsed.success) return undefined;
    const { task } = parsed.data;
    if (TERMINAL.has(task.status) || this.open.has(task.taskId)) return task.taskId;
    this.open.set(task.taskId, { tool, ...expiry(task, now) });
    this.counter.taskOpened(this.server);
    return task.taskId;
  }

  /** A client request: remembers `tasks/*` ones until their response. */
  request(message: JSONRPCRequest): void {
    if (!TASK_METHODS.has(message.method)) return;
    const params = TaskParamsSchema.safeParse(message.params);
    this.pending.set(keyOf(message.id), { method: message.method, taskId: params.success ? params.data.taskId : undefined });
    if (this.pending.size > MAX_PENDING) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
  }

  /** True when `id` is a `tasks/result` request still waiting for its answer. */
  isWaitingForResult(id: RequestId): boolean {
    return this.pending.get(keyOf(id))?.method === 'tasks/result';
  }

  /** A server response: updates the tasks a `tasks/*` answer tells about. */
  response(message: JSONRPCResultResponse | JSONRPCErrorResponse, now = Date.now()): void {
    if (message.id === undefined || message.id === null) return;
    const key = keyOf(message.id);
    const request = this.pending.get(key);
    if (!request) return;
    this.pending.delete(key);
    if ('error' in message) {
      if (message.error.code === INVALID_PARAMS && request.taskId !== undefined) this.end(request.taskId);
      return;
    }
    if (request.method === 'tasks/result') {
      if (request.taskId !== undefined) this.end(request.taskId);
    } else if (request.method === 'tasks/list') {
      const listed = ListedSchema.safeParse(message.result);
      if (listed.success) for (const task of listed.data.tasks) this.seen(task, now);
    } else {
      this.seen(message.result, now);
    }
  }

  /** A `Task` the server sent (status notification, or an answer): ends or refreshes it. */
  seen(value: unknown, now = Date.now()): void {
    const parsed = TaskSchema.safeParse(value);
    if (!parsed.success) return;
    const task = parsed.data;
    const open = this.open.get(task.taskId);
    if (!open) return;
    if (TERMINAL.has(task.status)) this.end(task.taskId);
    else if (!open.bounded) open.forgetAt = expiry(task, now).forgetAt;
  }

  /** Forgets tasks past their TTL or unheard of for too long; returns how many. */
  sweep(now = Date.now()): number {
    let forgotten = 0;
    for (const [taskId, task] of this.open) {
      if (task.forgetAt > now) continue;
      this.end(taskId);
      forgotten += 1;
    }
    return forgotten;
  }

  /** The session closed: every task of it ends here. */
  clear(): void {
    for (const taskId of [...this.open.keys()]) this.end(taskId);
    this.pending.clear();
  }

  private end(taskId: string): void {
    if (!this.open.delete(taskId)) return;
    this.endedAt = Date.now();
    this.counter.taskEnded(this.server);
  }
}

/** When to forget a task: creation + TTL when it has one, else an hour after it was last heard of. */
function expiry(task: z.infer<typeof TaskSchema>, now: number): Pick<OpenTask, 'forgetAt' | 'bounded'> {
  if (typeof task.ttl === 'number') {
    const created = task.createdAt !== undefined ? Date.parse(task.createdAt) : Number.NaN;
    return { forgetAt: (Number.isFinite(created) ? created : now) + task.ttl, bounded: true };
  }
  return { forgetAt: now + UNBOUNDED_TASK_FORGET_MS, bounded: false };
}
