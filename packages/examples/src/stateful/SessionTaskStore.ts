import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks';
import type { Task } from '@modelcontextprotocol/sdk/types.js';

/**
 * The task store of one MCP session (one per server instance, so a task of one session is invisible to
 * every other): the SDK's in-memory store, plus a hook when a task is cancelled (`tasks/cancel` sets the
 * status in the store directly), so the work behind it stops at once instead of at its next step.
 */
export class SessionTaskStore extends InMemoryTaskStore {
  private readonly cancelHooks = new Map<string, () => void>();

  /** Calls `hook` once if `taskId` is cancelled; the returned function removes the hook. */
  onCancelled(taskId: string, hook: () => void): () => void {
    this.cancelHooks.set(taskId, hook);
    return () => this.cancelHooks.delete(taskId);
  }

  override async updateTaskStatus(taskId: string, status: Task['status'], statusMessage?: string, sessionId?: string): Promise<void> {
    await super.updateTaskStatus(taskId, status, statusMessage, sessionId);
    if (status !== 'cancelled') return;
    const hook = this.cancelHooks.get(taskId);
    this.cancelHooks.delete(taskId);
    hook?.();
  }

  /** Forgets every task and hook (the session ended). */
  dispose(): void {
    this.cancelHooks.clear();
    this.cleanup();
  }
}
