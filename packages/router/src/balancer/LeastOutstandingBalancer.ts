import type { Balancer, Placement, PlacementRequest, ReplicaView } from './Balancer.js';

/**
 * Picks the replica with the fewest calls this router has outstanding on it. Ties (common when calls are
 * short and sequential, where every count is 0) are broken in turn, so idle replicas still share work.
 */
export class LeastOutstandingBalancer implements Balancer {
  readonly name = 'least-outstanding';
  private turn = 0;

  pick<R extends ReplicaView>(candidates: readonly R[], _request: PlacementRequest): Placement<R> | undefined {
    if (candidates.length === 0) return undefined;
    let least = Infinity;
    for (const c of candidates) least = Math.min(least, c.outstanding);
    const tied = candidates.filter((c) => c.outstanding === least);
    this.turn = (this.turn + 1) % 1_000_000_007;
    const replica = tied[this.turn % tied.length]!;
    const reason = (): string =>
      tied.length === candidates.length && tied.length > 1 ? `all ${tied.length} have ${least} outstanding: in turn` : `fewest outstanding (${least})${tied.length > 1 ? `, in turn among ${tied.length}` : ''}`;
    return { replica, reason };
  }
}
