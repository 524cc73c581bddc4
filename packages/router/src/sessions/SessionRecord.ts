import { LoggingLevelSchema } from '@modelcontextprotocol/sdk/types.js';
import { UpstreamBindingSchema, type UpstreamBinding } from '@flotilla/protocol';
import { z } from 'zod';

/** Where a piece of session state lives: one server on one node. */
export const NodeBindingSchema = z.object({ nodeId: z.string().min(1).max(128), server: z.string().min(1).max(64) });
export type NodeBinding = z.infer<typeof NodeBindingSchema>;

// The binding is a wire type (the session record is shared over NATS KV, hand-offs carry it too).
export { UpstreamBindingSchema, type UpstreamBinding } from '@flotilla/protocol';

/** Most task bindings a session record keeps; older tasks are found by asking the client's sessions. */
export const MAX_RECORDED_TASKS = 200;

/** A client session's shared state: what every router replica serving it must agree on. */
export const SessionRecordSchema = z.object({
  v: z.literal(1),
  logLevel: LoggingLevelSchema.optional(),
  /** server → node, for servers with sticky affinity. */
  affinity: z.record(z.string(), z.string()),
  /** uri → where the subscription is held. */
  subscriptions: z.record(z.string(), NodeBindingSchema),
  /** task id → where the task runs (the most recent). */
  tasks: z.record(z.string(), NodeBindingSchema),
  /** `<instanceId>/<server>` → the client's upstream session there. */
  upstreams: z.record(z.string(), UpstreamBindingSchema),
  /** Epoch ms of the last write (records that nobody touches expire with the store's TTL). */
  touchedAt: z.number().int(),
});
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

/** A new session's record. */
export function emptyRecord(now = Date.now()): SessionRecord {
  return { v: 1, affinity: {}, subscriptions: {}, tasks: {}, upstreams: {}, touchedAt: now };
}

/** The key of an upstream binding. */
export function upstreamKey(instanceId: string, server: string): string {
  return `${instanceId}/${server}`;
}

/** One change to a session record; replicas apply it to the latest record (compare-and-set), not a stale copy. */
export type SessionChange =
  | { readonly kind: 'logLevel'; readonly level: z.infer<typeof LoggingLevelSchema> }
  | { readonly kind: 'affinity'; readonly server: string; readonly nodeId: string }
  | { readonly kind: 'subscription'; readonly uri: string; readonly where: NodeBinding | undefined }
  | { readonly kind: 'task'; readonly taskId: string; readonly where: NodeBinding }
  | { readonly kind: 'upstream'; readonly key: string; readonly binding: UpstreamBinding | undefined }
  | { readonly kind: 'touch' };

/** Applies `change` to `record` in place. */
export function applyChange(record: SessionRecord, change: SessionChange, now = Date.now()): void {
  record.touchedAt = now;
  switch (change.kind) {
    case 'logLevel':
      record.logLevel = change.level;
      return;
    case 'affinity':
      record.affinity[change.server] = change.nodeId;
      return;
    case 'subscription':
      if (change.where) record.subscriptions[change.uri] = change.where;
      else delete record.subscriptions[change.uri];
      return;
    case 'task': {
      delete record.tasks[change.taskId];
      record.tasks[change.taskId] = change.where;
      const ids = Object.keys(record.tasks);
      for (const id of ids.slice(0, Math.max(0, ids.length - MAX_RECORDED_TASKS))) delete record.tasks[id];
      return;
    }
    case 'upstream':
      if (change.binding) record.upstreams[change.key] = change.binding;
      else delete record.upstreams[change.key];
      return;
    case 'touch':
      return;
  }
}
