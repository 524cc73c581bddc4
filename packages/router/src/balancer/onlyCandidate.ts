import type { Placement, ReplicaView } from './Balancer.js';

/** The placement when there was nothing to choose between. */
export function onlyCandidate<R extends ReplicaView>(replica: R): Placement<R> {
  return { replica, reason: () => 'only candidate' };
}
