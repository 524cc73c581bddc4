import type { BalancerStrategy } from '../RouterOptions.js';
import type { Balancer } from './Balancer.js';
import { LeastOutstandingBalancer } from './LeastOutstandingBalancer.js';
import { RoundRobinBalancer } from './RoundRobinBalancer.js';

/** Builds the balancer for a configured strategy. */
export function createBalancer(strategy: BalancerStrategy): Balancer {
  switch (strategy) {
    case 'least-outstanding':
      return new LeastOutstandingBalancer();
    case 'round-robin':
      return new RoundRobinBalancer();
  }
}
