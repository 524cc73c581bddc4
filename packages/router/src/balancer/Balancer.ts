/**
 * What a balancer may know about a replica. The router fills it from its own bookkeeping; strategies
 * that need more (e.g. the NATS load and progress reports of a progress-aware P2C) get a `NodeLoadView`
 * in their constructor and look nodes up by `nodeId`.
 */
export interface ReplicaView {
  readonly nodeId: string;
  /** Calls this router has placed on the node that have not finished (queued here or running there). */
  readonly outstanding: number;
  /** Concurrent calls the node announced it runs. */
  readonly capacity: number;
}

/** What is being placed; strategies may keep per-key state (e.g. round-robin position per tool). */
export interface PlacementRequest {
  /** The client-facing name of the tool, prompt or resource. */
  readonly key: string;
}

/**
 * Picks one replica among candidates that are all usable right now: the router has already dropped
 * draining nodes, nodes whose breaker is open, and nodes tried before for this call.
 */
export interface Balancer {
  readonly name: string;
  pick<R extends ReplicaView>(candidates: readonly R[], request: PlacementRequest): R | undefined;
}
