import type { BalancerStrategy } from '../RouterOptions.js';
import type { Balancer } from './Balancer.js';
import { LeastOutstandingBalancer } from './LeastOutstandingBalancer.js';
import { P2cEwmaBalancer } from './P2cEwmaBalancer.js';
import { ProgressAwareBalancer } from './ProgressAwareBalancer.js';
import type { Random } from './Random.js';
import { RoundRobinBalancer } from './RoundRobinBalancer.js';

/** Options shared by the sampling strategies (tests make them deterministic). */
export interface BalancerOptions {
  random?: Random;
  now?: () => number;
}

/** Builds the balancer for a configured strategy. */
export function createBalancer(strategy: BalancerStrategy, options: BalancerOptions = {}): Balancer {
  switch (strategy) {
    case 'progress-aware':
      return new ProgressAwareBalancer(options);
    case 'p2c-ewma':
      return new P2cEwmaBalancer(options);
    case 'least-outstanding':
      return new LeastOutstandingBalancer();
    case 'round-robin':
      return new RoundRobinBalancer();
  }
}
