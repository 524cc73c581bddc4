import type { LoadSignals } from './LoadSignals.js';

/**
 * What a balancer may know about a replica. The router fills it from its own bookkeeping; load-aware
 * strategies also read {@link LoadSignals} (the node's NATS load and progress reports corrected by this
 * router's own calls, and the latencies this router measured), which a replica offers through
 * `loadSignals`. Plain views without it (tests, simple strategies) are fine: load-aware strategies then
 * fall back to the outstanding count.
 */
export interface ReplicaView {
  readonly nodeId: string;
  /** Calls this router has placed on the node that have not finished (queued here or running there). */
  readonly outstanding: number;
  /** Concurrent calls the node announced it runs. */
  readonly capacity: number;
  /** What is known about the node's load right now (`now` is epoch ms). Computed on demand: may cost O(calls on the node). */
  loadSignals?(now: number): LoadSignals;
}

/** What is being placed; strategies may keep per-key state (e.g. round-robin position per tool). */
export interface PlacementRequest {
  /** The client-facing name of the tool, prompt or resource. */
  readonly key: string;
  /**
   * For tool calls: `<server>/<tool>` with the tool's upstream name, the key of the per-tool latency
   * statistics in load reports and in the router's own measurements.
   */
  readonly tool?: string;
}

/** A balancer's choice and why it made it. */
export interface Placement<R extends ReplicaView> {
  readonly replica: R;
  /**
   * Why this replica, in a few words with the numbers compared (e.g. `expected 120.0 ms vs 340.5 ms on n2`):
   * the dispatch span's `flotilla.balancer.reason`, so an SRE can see why a call went where it went. A
   * function, formatted only when a span records it: picks are on every call's path.
   */
  readonly reason: () => string;
}

/**
 * Picks one replica among candidates that are all usable right now: the router has already dropped
 * draining nodes, nodes whose breaker (or whose breaker for this tool) is open, and nodes tried before for
 * this call.
 */
export interface Balancer {
  /** The strategy's name (`progress-aware`, …): the dispatch span's `flotilla.balancer.strategy`. */
  readonly name: string;
  pick<R extends ReplicaView>(candidates: readonly R[], request: PlacementRequest): Placement<R> | undefined;
}
