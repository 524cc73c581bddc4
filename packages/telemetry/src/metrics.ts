import { Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry, type LabelValues } from 'prom-client';

/** A Prometheus registry for one process, with Node's default metrics under the given prefix. */
export function createMetricsRegistry(prefix: string, labels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: `${prefix}_` });
  return registry;
}

/** Latency buckets (seconds) covering sub-millisecond loopback calls up to minute-long tools. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
