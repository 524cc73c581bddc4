import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import type { AffinityBinding } from '../forwarding/CallPlacement.js';

/** Where a piece of session state lives: one server on one node. */
export interface NodeBinding {
  readonly nodeId: string;
  readonly server: string;
}

/** Most task bindings one session remembers; the oldest go first. */
const MAX_TASKS = 10_000;

/**
 * What a client session has set up across the mesh, beyond its upstream sessions: its log level, the node
 * each sticky server binds it to, the node holding each resource subscription, and the node running each
 * task. Plain data (see {@link snapshot}) so that another router replica can take the session over.
 */
export class SessionState {
  logLevel: LoggingLevel | undefined;
  /** server → node, for servers with sticky affinity. */
  private readonly affinity = new Map<string, string>();
  /** uri → where the subscription is held. */
  readonly subscriptions = new Map<string, NodeBinding>();
  /** task id → where the task runs. */
  private readonly tasks = new Map<string, NodeBinding>();

  /** The client's binding of `server` to a node (sticky affinity). */
  binding(server: string): AffinityBinding {
    const affinity = this.affinity;
    return {
      get nodeId() {
        return affinity.get(server);
      },
      bind(nodeId: string) {
        affinity.set(server, nodeId);
      },
    };
  }

  /** Remembers where a task runs. */
  addTask(taskId: string, where: NodeBinding): void {
    this.tasks.delete(taskId);
    this.tasks.set(taskId, where);
    while (this.tasks.size > MAX_TASKS) this.tasks.delete(this.tasks.keys().next().value!);
  }

  task(taskId: string): NodeBinding | undefined {
    return this.tasks.get(taskId);
  }

  /** Whether the client keeps state on `server` at `nodeId` (a subscription, a task, a sticky binding): its session there must not expire idle. */
  keeps(nodeId: string, server: string): boolean {
    if (this.affinity.get(server) === nodeId) return true;
    for (const b of this.subscriptions.values()) if (b.nodeId === nodeId && b.server === server) return true;
    for (const b of this.tasks.values()) if (b.nodeId === nodeId && b.server === server) return true;
    return false;
  }

  /** The state as plain data. */
  snapshot(): { logLevel?: LoggingLevel; affinity: Record<string, string>; subscriptions: Record<string, NodeBinding>; tasks: Record<string, NodeBinding> } {
    return {
      ...(this.logLevel ? { logLevel: this.logLevel } : {}),
      affinity: Object.fromEntries(this.affinity),
      subscriptions: Object.fromEntries(this.subscriptions),
      tasks: Object.fromEntries(this.tasks),
    };
  }
}
