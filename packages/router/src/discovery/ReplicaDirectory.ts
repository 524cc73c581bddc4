import type { BreakerState } from '../endpoint/NodeGuard.js';
import type { ForwardTarget } from '../endpoint/ForwardTarget.js';

/** Hears a per-tool breaker change: `tool` is `<server>/<tool>`. */
export type ToolBreakerListener = (nodeId: string, tool: string, to: BreakerState) => void;

/** Where the forwarder finds replicas to place a call on ({@link MeshDiscovery} in the router; fakes in tests). */
export interface ReplicaDirectory {
  endpoint(nodeId: string): ForwardTarget | undefined;
  /** Whether the catalog's tool `name` is annotated `readOnlyHint` (hedging is only for read-only tools). */
  isReadOnlyTool?(name: string): boolean;
  /** Subscribes to per-tool breaker changes of every node; returns the unsubscribe function. */
  onToolBreakerChange?(listener: ToolBreakerListener): () => void;
}
