import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import type { AffinityBinding } from '../forwarding/CallPlacement.js';
import {
  applyChange,
  emptyRecord,
  type NodeBinding,
  type SessionChange,
  type SessionRecord,
  type UpstreamBinding,
} from '../sessions/SessionRecord.js';
import type { StoredRecord } from '../sessions/SessionStore.js';

export type { NodeBinding, UpstreamBinding } from '../sessions/SessionRecord.js';

/**
 * What a client session has set up across the mesh: its log level, the node each sticky server binds it
 * to, the node holding each resource subscription, the node running each task, and its upstream sessions
 * (so another replica can use them). This replica's copy of the session's shared record: every change is
 * applied here at once and handed to `publish` (the session store), and records other replicas wrote
 * replace this copy when they are newer.
 *
 * A newer record from the store may predate changes made here that are still on their way to it: those
 * are applied again on top of it (every change is a set or a delete, so applying one twice is harmless).
 * Without that, a subscription made a moment ago would vanish from this copy until its own write came
 * back, and a node lost in that moment would take the subscription with it.
 */
export class SessionState {
  private record: SessionRecord;
  private revision = 0;
  /** Changes made here whose write to the store has not finished yet, in order. */
  private readonly unsaved: SessionChange[] = [];

  constructor(
    private readonly publish: (change: SessionChange) => Promise<StoredRecord | undefined>,
    stored?: StoredRecord,
  ) {
    this.record = stored ? structuredClone(stored.record) : emptyRecord();
    this.revision = stored?.revision ?? 0;
  }

  get logLevel(): LoggingLevel | undefined {
    return this.record.logLevel;
  }

  setLogLevel(level: LoggingLevel): void {
    this.change({ kind: 'logLevel', level });
  }

  /** The client's binding of `server` to a node (sticky affinity). */
  binding(server: string): AffinityBinding {
    const state = this;
    return {
      get nodeId() {
        return state.record.affinity[server];
      },
      bind: (nodeId: string) => this.change({ kind: 'affinity', server, nodeId }),
    };
  }

  /** Where the subscription to `uri` is held, if the client has one. */
  subscription(uri: string): NodeBinding | undefined {
    return this.record.subscriptions[uri];
  }

  /** Every subscription and where it is held. */
  subscriptions(): Array<[string, NodeBinding]> {
    return Object.entries(this.record.subscriptions);
  }

  setSubscription(uri: string, where: NodeBinding | undefined): void {
    this.change({ kind: 'subscription', uri, where });
  }

  /** Remembers where a task runs. */
  addTask(taskId: string, where: NodeBinding): void {
    this.change({ kind: 'task', taskId, where });
  }

  task(taskId: string): NodeBinding | undefined {
    return this.record.tasks[taskId];
  }

  /** The client's upstream session on `key` (`<instanceId>/<server>`), if it has one any replica can use. */
  upstream(key: string): UpstreamBinding | undefined {
    return this.record.upstreams[key];
  }

  setUpstream(key: string, binding: UpstreamBinding | undefined): void {
    this.change({ kind: 'upstream', key, binding });
  }

  /** Whether the client keeps state on `server` at `nodeId` (a subscription, a task, a sticky binding): its session there must not expire idle. */
  keeps(nodeId: string, server: string): boolean {
    if (this.record.affinity[server] === nodeId) return true;
    const here = (b: NodeBinding): boolean => b.nodeId === nodeId && b.server === server;
    return Object.values(this.record.subscriptions).some(here) || Object.values(this.record.tasks).some(here);
  }

  /** Takes a record from the store when it is newer than this copy. */
  adopt(stored: StoredRecord): void {
    if (stored.revision <= this.revision) return;
    this.record = structuredClone(stored.record);
    this.revision = stored.revision;
    for (const change of this.unsaved) applyChange(this.record, change);
  }

  /** The state as plain data. */
  snapshot(): SessionRecord {
    return structuredClone(this.record);
  }

  private change(change: SessionChange): void {
    applyChange(this.record, change);
    this.unsaved.push(change);
    const saved = (): void => {
      const i = this.unsaved.indexOf(change);
      if (i >= 0) this.unsaved.splice(i, 1);
    };
    this.publish(change).then(
      (stored) => {
        saved();
        if (stored) this.adopt(stored);
      },
      // The caller logs the failure; this copy keeps the change until a newer record replaces it.
      saved,
    );
  }
}
