import { Counter, Gauge, type Registry } from '@flotilla/telemetry';
import type { NodeLoadView } from '../discovery/NodeLoadView.js';
import type { NodeKeyDirectory } from '../discovery/NodeKeyDirectory.js';

/**
 * Gauges of the control plane's defences, read at scrape time: NATS reports dropped by reason (unknown
 * node, unsigned, bad signature, malformed, subject mismatch, clock skew, stale seq), nodes with report
 * state (bounded by the accepted registry view), and accepted nodes.
 */
export function registerReportMetrics(registry: Registry, loadView: NodeLoadView, keys: NodeKeyDirectory): void {
  new Counter({
    name: 'flotilla_router_reports_dropped_total',
    help: 'NATS load/progress reports this router dropped, by reason.',
    labelNames: ['reason'],
    registers: [registry],
    // The load view counts; the counter shows its (monotonic) totals at scrape time.
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(loadView.droppedReports())) this.inc({ reason }, n);
    },
  });
  new Gauge({
    name: 'flotilla_router_report_nodes',
    help: 'Nodes this router keeps load/progress state for (never more than the accepted nodes).',
    registers: [registry],
    collect() {
      this.set(loadView.nodeCount);
    },
  });
  new Gauge({
    name: 'flotilla_router_accepted_nodes',
    help: 'Registry records this router accepted (trusted, or unsigned under the opt-out).',
    registers: [registry],
    collect() {
      this.set(keys.size);
    },
  });
}
