import type { Balancer, Placement, PlacementRequest, ReplicaView } from './Balancer.js';
import { onlyCandidate } from './onlyCandidate.js';
import { sampleTwo, type Random } from './Random.js';

/** Cost of a replica that has calls outstanding but no latency sample yet (Finagle's `Long.MaxValue >> 16`). */
const PENALTY = 2 ** 47;

/** Options of {@link P2cEwmaBalancer}. */
export interface P2cEwmaOptions {
  /** Uniform [0, 1) source for sampling; default `Math.random`. */
  random?: Random;
  /** Clock, epoch ms; default `Date.now`. */
  now?: () => number;
}

/**
 * Finagle's P2C over peak EWMA: two candidates are sampled and the one with the lower
 * `peakEwma × (outstanding + 1)` wins, where the peak EWMA is this router's own measurement of the node's
 * response times (it jumps to any slower sample and decays toward faster ones; see `PeakEwma`). A node
 * without a sample and without outstanding calls costs 0 (so new nodes are tried); one without a sample
 * but with calls outstanding costs a large penalty. It needs no reports from the nodes, which makes it the
 * natural comparison for the progress-aware strategy.
 */
export class P2cEwmaBalancer implements Balancer {
  readonly name = 'p2c-ewma';
  private readonly random: Random;
  private readonly now: () => number;

  constructor(options: P2cEwmaOptions = {}) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  pick<R extends ReplicaView>(candidates: readonly R[], _request: PlacementRequest): Placement<R> | undefined {
    if (candidates.length === 0) return undefined;
    const sampled = sampleTwo(candidates, this.random);
    if (sampled.length === 1) return onlyCandidate(sampled[0]!);
    const now = this.now();
    const [a, b] = sampled;
    const [ca, cb] = [costOf(a, now), costOf(b, now)];
    const [replica, cost, other, otherCost] = cb < ca ? [b, cb, a, ca] : [a, ca, b, cb];
    return { replica, reason: () => `cost ${formatCost(cost)} vs ${formatCost(otherCost)} on ${other.nodeId}` };
  }
}

/** Finagle's load metric of one replica. */
export function costOf(replica: ReplicaView, now: number): number {
  const peak = replica.loadSignals?.(now).measured.peakEwmaMs;
  if (peak === undefined || peak === 0) return replica.outstanding > 0 ? PENALTY + replica.outstanding : 0;
  return peak * (replica.outstanding + 1);
}

/** Costs are ms × calls; the penalty of an unmeasured busy node reads as such. */
function formatCost(cost: number): string {
  return cost >= PENALTY ? 'unmeasured' : cost.toFixed(1);
}
