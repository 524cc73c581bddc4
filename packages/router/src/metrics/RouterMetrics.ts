import { Counter, Gauge, Histogram, LATENCY_BUCKETS, createMetricsRegistry, type Registry } from '@flotilla/telemetry';
import type { BreakerState } from '../endpoint/NodeGuard.js';
import type { AttemptResult, CallObserver, CallOutcome } from '../forwarding/CallObserver.js';
import type { SessionCloseReason, SessionPoolObserver } from '../upstream/UpstreamSessionPool.js';
import { NodeSeriesRetention } from './NodeSeriesRetention.js';

/** Every metric name of the router starts with this (process and Node.js defaults included). */
export const ROUTER_METRICS_PREFIX = 'flotilla_router';

/** Routes of `flotilla_router_http_requests_total`. */
export type HttpRoute = '/mcp' | '/healthz' | '/readyz' | '/metrics' | '/api/v1' | '/dashboard' | 'other';

/** One node as the gauges see it at scrape time. */
export interface NodeGaugeView {
  readonly nodeId: string;
  readonly running: number;
  readonly queued: number;
  readonly breakerState: BreakerState;
  /**
   * Every per-tool breaker the node has now, by `<server>/<tool>`. Optional: without it the tool breaker
   * gauge shows the last state it heard of.
   */
  toolBreakerStates?(): Readonly<Record<string, BreakerState>>;
}

/** Where the gauges read the router's state when scraped. */
export interface RouterMetricsSources {
  nodes(): NodeGaugeView[];
  catalogTools(): number;
  catalogNodes(): number;
  clientSessions(): number;
  /** Clients' own upstream sessions the router holds. */
  upstreamSessions(): number;
  registryUp(): boolean;
  natsConnected(): boolean;
  /** Epoch ms of the last load report from the node, if any arrived. */
  lastLoadReportAt(nodeId: string): number | undefined;
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** `to` label value of a breaker transition (Prometheus label values read better without a hyphen). */
const transitionLabel = (to: BreakerState): string => (to === 'half-open' ? 'half_open' : to);

/** `<server>/<tool>` → its labels; server names cannot contain `/`, tool names may. */
function splitToolKey(key: string): { server: string; tool: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { server: '', tool: key } : { server: key.slice(0, slash), tool: key.slice(slash + 1) };
}

/**
 * The router's Prometheus metrics (names and labels as docs/observability.md lists them). Counters are fed
 * by the forwarder (as a {@link CallObserver}), the node guards and the HTTP server; gauges read the
 * router's state at scrape time, so a node that left has no gauge series any more.
 */
export class RouterMetrics implements CallObserver, SessionPoolObserver {
  readonly registry: Registry;
  private readonly clientSessionsRefused: Counter<never>;
  private readonly clientSessionsExpired: Counter<never>;
  private readonly toolsRefused: Counter<'server'>;
  private readonly argumentsNotChecked: Counter<'reason'>;
  private readonly upstreamOpened: Counter<never>;
  private readonly upstreamOpenDuration: Histogram<never>;
  private readonly upstreamClosed: Counter<'reason'>;
  private readonly upstreamRefused: Counter<never>;
  private readonly calls: Counter<'tool' | 'node' | 'outcome'>;
  private readonly duration: Histogram<'tool' | 'outcome'>;
  private readonly attempts: Counter<'tool' | 'node' | 'result'>;
  private readonly retries: Counter<'tool' | 'reason'>;
  private readonly failovers: Counter<'tool' | 'reason'>;
  private readonly breakerTransitions: Counter<'node' | 'to'>;
  private readonly hedges: Counter<'tool'>;
  private readonly toolBreakerTransitions: Counter<'node' | 'server' | 'tool' | 'to'>;
  private readonly http: Counter<'route' | 'status'>;
  /**
   * Per node, the tool breakers that ever left `closed` there and the last state heard. A node has a
   * breaker for every tool it was ever called for, nearly all closed; only these get a state series, which
   * keeps the gauge's cardinality to the tools that actually failed somewhere.
   */
  private readonly troubledToolBreakers = new Map<string, Map<string, BreakerState>>();
  /** Node-labelled counter series, dropped a while after their node left. */
  private readonly nodeSeries: NodeSeriesRetention;

  constructor(private readonly sources: RouterMetricsSources, nodeSeries = new NodeSeriesRetention()) {
    this.nodeSeries = nodeSeries;
    const p = ROUTER_METRICS_PREFIX;
    const registry = createMetricsRegistry(p);
    this.registry = registry;
    const registers = [registry];
    this.calls = new Counter({ name: `${p}_calls_total`, help: 'Client tools/call requests by namespaced tool, answering node and outcome.', labelNames: ['tool', 'node', 'outcome'], registers });
    this.duration = new Histogram({
      name: `${p}_call_duration_seconds`,
      help: "From receiving the client's tools/call to answering it (all attempts, router queueing included).",
      labelNames: ['tool', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.attempts = new Counter({ name: `${p}_attempts_total`, help: 'Dispatches of a call to a node (one call may make several).', labelNames: ['tool', 'node', 'result'], registers });
    this.retries = new Counter({ name: `${p}_retries_total`, help: 'Further attempts after an attempt failed before the node accepted the call.', labelNames: ['tool', 'reason'], registers });
    this.failovers = new Counter({ name: `${p}_failovers_total`, help: 'Further attempts after a node accepted the call and then failed.', labelNames: ['tool', 'reason'], registers });
    this.breakerTransitions = new Counter({ name: `${p}_breaker_transitions_total`, help: 'Circuit breaker state changes per node.', labelNames: ['node', 'to'], registers });
    this.hedges = new Counter({ name: `${p}_hedges_total`, help: 'Second copies of read-only calls sent to another replica because the first ran past the tool p95 (hedging).', labelNames: ['tool'], registers });
    this.toolBreakerTransitions = new Counter({
      name: `${p}_tool_breaker_transitions_total`,
      help: 'Per-tool circuit breaker state changes per node, by hosted server and upstream tool name.',
      labelNames: ['node', 'server', 'tool', 'to'],
      registers,
    });
    this.http = new Counter({ name: `${p}_http_requests_total`, help: 'HTTP requests by route and status code.', labelNames: ['route', 'status'], registers });
    this.clientSessionsRefused = new Counter({ name: `${p}_client_sessions_refused_total`, help: 'Client initialize requests refused because the router held its maximum of client sessions.', registers });
    this.toolsRefused = new Counter({ name: `${p}_tools_refused_total`, help: 'Tools left out of the catalog because their definition is beyond the router\'s size or depth bounds, by server.', labelNames: ['server'], registers });
    this.argumentsNotChecked = new Counter({ name: `${p}_arguments_unchecked_total`, help: 'Tool calls sent on without the router checking their arguments (the node checks them): over the time budget, too many checks waiting, or the validation worker failed.', labelNames: ['reason'], registers });
    this.clientSessionsExpired = new Counter({ name: `${p}_client_sessions_expired_total`, help: 'Client sessions closed after their idle timeout.', registers });
    this.upstreamOpened = new Counter({ name: `${p}_upstream_sessions_opened_total`, help: "Clients' own upstream sessions opened (one per client session × node × server used).", registers });
    this.upstreamOpenDuration = new Histogram({
      name: `${p}_upstream_session_open_seconds`,
      help: 'Time to open a client upstream session (initialize handshake, log level).',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamClosed = new Counter({
      name: `${p}_upstream_sessions_closed_total`,
      help: "Clients' own upstream sessions closed, by reason: client_closed, idle, evicted, node_left, lost.",
      labelNames: ['reason'],
      registers,
    });
    this.upstreamRefused = new Counter({ name: `${p}_upstream_sessions_refused_total`, help: 'Calls refused because the router held its maximum of upstream sessions, all in use.', registers });

    const perNode = (name: string, help: string, read: (n: NodeGaugeView) => number): void => {
      new Gauge({
        name: `${p}_${name}`,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const n of sources.nodes()) this.set({ node: n.nodeId }, read(n));
        },
      });
    };
    perNode('inflight_calls', 'Calls this router has dispatched to the node and not yet got an answer for.', (n) => n.running);
    perNode('queued_calls', "Calls waiting in this router's per-node queue.", (n) => n.queued);
    perNode('breaker_state', 'Circuit breaker of the node: 0 closed, 1 half-open, 2 open.', (n) => BREAKER_VALUE[n.breakerState]);
    const troubled = this.troubledToolBreakers;
    new Gauge({
      name: `${p}_tool_breaker_state`,
      help: 'Circuit breaker of one tool on one node: 0 closed, 1 half-open, 2 open (tools whose breaker ever left closed there).',
      labelNames: ['node', 'server', 'tool'],
      registers,
      collect() {
        this.reset();
        const present = new Map(sources.nodes().map((n) => [n.nodeId, n]));
        // Read at scrape time, like the node breaker gauge: a node that left loses its series here.
        for (const nodeId of [...troubled.keys()]) if (!present.has(nodeId)) troubled.delete(nodeId);
        for (const [nodeId, tools] of troubled) {
          const current = present.get(nodeId)!.toolBreakerStates?.();
          for (const [key, heard] of [...tools]) {
            const state = current ? current[key] : heard;
            // No such breaker on the node any more: it left and came back under the same id, afresh.
            if (state === undefined) {
              tools.delete(key);
              continue;
            }
            this.set({ node: nodeId, ...splitToolKey(key) }, BREAKER_VALUE[state]);
          }
          if (tools.size === 0) troubled.delete(nodeId);
        }
      },
    });
    new Gauge({
      name: `${p}_node_report_age_seconds`,
      help: 'Seconds since the last load report from the node.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const n of sources.nodes()) {
          const at = sources.lastLoadReportAt(n.nodeId);
          if (at !== undefined) this.set({ node: n.nodeId }, Math.max(0, (now - at) / 1000));
        }
      },
    });
    const single = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name: `${p}_${name}`,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };
    single('catalog_tools', 'Tools in the merged catalog.', () => sources.catalogTools());
    single('catalog_nodes', 'Nodes whose servers are in the catalog.', () => sources.catalogNodes());
    single('client_sessions', 'Open client MCP sessions.', () => sources.clientSessions());
    single('upstream_sessions', "Clients' own upstream MCP sessions the router holds.", () => sources.upstreamSessions());
    single('registry_up', '1 while the registry watch can read the registry.', () => (sources.registryUp() ? 1 : 0));
    single('nats_connected', '1 while the NATS connection is up.', () => (sources.natsConnected() ? 1 : 0));
  }

  attempt(tool: string, nodeId: string, result: AttemptResult): void {
    this.nodeSeries.inc(this.attempts, nodeId, { tool, node: nodeId, result });
  }

  retry(tool: string, reason: AttemptResult): void {
    this.retries.inc({ tool, reason });
  }

  failover(tool: string, reason: AttemptResult): void {
    this.failovers.inc({ tool, reason });
  }

  finished(tool: string, nodeId: string | undefined, outcome: CallOutcome, seconds: number): void {
    if (nodeId === undefined) this.calls.inc({ tool, node: 'none', outcome });
    else this.nodeSeries.inc(this.calls, nodeId, { tool, node: nodeId, outcome });
    this.duration.observe({ tool, outcome }, seconds);
  }

  hedged(tool: string, _nodeId: string): void {
    // No node label: which replica got the second copy is in the attempts counter already.
    this.hedges.inc({ tool });
  }

  breakerTransition(nodeId: string, to: BreakerState): void {
    this.nodeSeries.inc(this.breakerTransitions, nodeId, { node: nodeId, to: transitionLabel(to) });
  }

  /** A per-tool breaker changed state (`tool` is `<server>/<tool>`, as the node guard names it). */
  toolBreakerTransition(nodeId: string, tool: string, to: BreakerState): void {
    this.nodeSeries.inc(this.toolBreakerTransitions, nodeId, { node: nodeId, ...splitToolKey(tool), to: transitionLabel(to) });
    let tools = this.troubledToolBreakers.get(nodeId);
    if (!tools) this.troubledToolBreakers.set(nodeId, (tools = new Map()));
    tools.set(tool, to);
  }

  /** A client initialize was refused at the session limit. */
  clientSessionRefused(): void {
    this.clientSessionsRefused.inc();
  }

  /** A server declared a tool beyond the router's bounds (see `ToolSchemaGuard`). */
  toolRefused(server: string): void {
    this.toolsRefused.inc({ server });
  }

  /** A call went on without the router checking its arguments (see `OffLoopArgumentValidator`). */
  argumentsUnchecked(reason: 'budget' | 'busy' | 'worker'): void {
    this.argumentsNotChecked.inc({ reason });
  }

  /** A client session was closed after its idle timeout. */
  clientSessionExpired(): void {
    this.clientSessionsExpired.inc();
  }

  opened(_nodeId: string, _server: string, ms: number): void {
    this.upstreamOpened.inc();
    this.upstreamOpenDuration.observe(ms / 1000);
  }

  closed(reason: SessionCloseReason): void {
    this.upstreamClosed.inc({ reason });
  }

  refused(): void {
    this.upstreamRefused.inc();
  }

  httpRequest(route: HttpRoute, status: number): void {
    this.http.inc({ route, status: String(status) });
  }

  /** The text exposition for `GET /metrics`. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    this.nodeSeries.prune(new Set(this.sources.nodes().map((n) => n.nodeId)));
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
