import type { Balancer, Placement, PlacementRequest, ReplicaView } from './Balancer.js';

/** Takes replicas in turn, per key, ignoring load; kept as a baseline to compare strategies against. */
export class RoundRobinBalancer implements Balancer {
  readonly name = 'round-robin';
  private readonly positions = new Map<string, number>();

  pick<R extends ReplicaView>(candidates: readonly R[], request: PlacementRequest): Placement<R> | undefined {
    if (candidates.length === 0) return undefined;
    const position = this.positions.get(request.key) ?? 0;
    // Wrap well before overflow; the modulo keeps the sequence fair when the candidate count changes.
    this.positions.set(request.key, (position + 1) % 1_000_000_007);
    const turn = position % candidates.length;
    return { replica: candidates[turn]!, reason: () => `turn ${turn + 1} of ${candidates.length}` };
  }
}
