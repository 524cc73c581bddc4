import type { NodeRecord, PingData } from '@flotilla/protocol';

/** Health of a node as its registry sees it (Consul's check states; NATS KV derives them from heartbeat age). */
export type NodeHealth = 'passing' | 'warning' | 'critical';

/** A node as read from a registry. */
export interface RegisteredNode {
  record: NodeRecord;
  /** Latest ping data the node reported with its heartbeat, if any. */
  ping?: PingData;
  health: NodeHealth;
  /** Epoch ms of the last heartbeat this reader saw (or the registry stored). */
  lastHeartbeatAt: number;
  /**
   * The node's signature over its record, when the backend stores one: `signed` is the canonical JSON of
   * the record exactly as stored (before this reader's schema applied defaults or dropped fields it does
   * not know), `sig` the node's signature over it. Routers check it against `record.nodeKey`.
   */
  proof?: RecordProof;
}

/** A record's signature as stored; see {@link RegisteredNode.proof}. */
export interface RecordProof {
  readonly signed: string;
  readonly sig: string;
}

/** Signs a node's record for the registry (the agent's node key); returns the signature. */
export type RecordSigner = (record: NodeRecord) => string;

/** What a registry watch reports: a new view of live nodes, or a change in whether the registry is reachable. */
export type RegistryWatchEvent =
  | { type: 'snapshot'; nodes: RegisteredNode[] }
  | { type: 'status'; reachable: boolean; error?: string };

/** A running watch; `stop` ends it. */
export interface RegistryWatch {
  stop(): Promise<void>;
}

/** Options shared by every backend. */
export interface RegistryTimings {
  /** How often agents heartbeat, ms (default 1000). */
  heartbeatIntervalMs: number;
  /** A node whose last heartbeat is older than this is critical and leaves the live view, ms (default 3000). */
  staleAfterMs: number;
}

export const DEFAULT_REGISTRY_TIMINGS: RegistryTimings = { heartbeatIntervalMs: 1000, staleAfterMs: 3000 };

/** Thrown by `register` when another live process already holds the node id. */
export class NodeIdCollisionError extends Error {
  constructor(readonly nodeId: string, detail: string) {
    super(`node id "${nodeId}" is already registered by another live agent (${detail}); choose a unique --node-id`);
    this.name = 'NodeIdCollisionError';
  }
}

/** Thrown when the registry rejects our credentials; names what to fix. */
export class RegistryAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryAuthError';
  }
}

/**
 * Thrown when the registry can never accept a request as it stands (e.g. a record too large for the
 * backend, a definition the registry rejects): retrying will not help, the configuration must change.
 */
export class RegistryConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryConfigError';
  }
}

/**
 * Where agents announce themselves and routers find them. Every backend passes the conformance suite in
 * `test/conformance.ts` of this package.
 */
export interface Registry {
  /** Backend name, e.g. `nats-kv`, `consul`. */
  readonly kind: string;
  /** Announces (or re-announces, e.g. with `draining` set) a node. Throws {@link NodeIdCollisionError} when another live instance holds the id. */
  register(record: NodeRecord): Promise<void>;
  /** Keeps a node alive and publishes its ping data. Throws when the registry no longer knows the node, so the caller re-registers. */
  heartbeat(record: NodeRecord, ping: PingData): Promise<void>;
  /** Withdraws a node at once. */
  deregister(nodeId: string): Promise<void>;
  /** Nodes currently registered; `includeCritical` adds the ones whose heartbeat is stale but not yet reaped. */
  list(options?: { includeCritical?: boolean }): Promise<RegisteredNode[]>;
  /**
   * Follows the live (passing or warning) nodes. The listener gets a snapshot first, then one on every
   * change, including a node going stale. While the registry is unreachable the last view is kept.
   */
  watch(listener: (event: RegistryWatchEvent) => void): RegistryWatch;
  /** Releases the backend's resources (not the NATS connection it was given). */
  close(): Promise<void>;
}

/** Thrown by `heartbeat` when the registry has lost the node (expired, reaped, registry restarted). */
export class NodeNotRegisteredError extends Error {
  constructor(readonly nodeId: string) {
    super(`node "${nodeId}" is not registered`);
    this.name = 'NodeNotRegisteredError';
  }
}
