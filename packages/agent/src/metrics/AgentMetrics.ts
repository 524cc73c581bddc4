import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, createMetricsRegistry, type Registry } from '@flotilla/telemetry';
import { CALL_OUTCOME_LABELS, outcomeLabel, rejectionLabel, type RejectionReason } from '../calls/callOutcomeLabel.js';
import type { CallTracker, LoadSnapshot } from '../calls/CallTracker.js';
import type { CallIdentity, CallOutcome, TrackedCall } from '../calls/TrackedCall.js';
import type { ReportKind } from '../nats/ReportPublisher.js';

/** Every metric name of the agent starts with this (process and Node.js defaults included). */
export const AGENT_METRICS_PREFIX = 'flotilla_agent';

/**
 * `tool` label of a call naming a tool its server does not list. Tool names come from clients, so they
 * are only used as label values once the server is known to have them: the label stays bounded by the
 * hosted catalogs. Parentheses are not allowed in MCP tool names, so this cannot collide with one.
 */
export const UNKNOWN_TOOL_LABEL = '(unknown)';

const REPORT_KINDS: readonly ReportKind[] = ['load', 'progress', 'event'];

/** Where the gauges read the node's state at scrape time. */
export interface AgentMetricsSources {
  load(): LoadSnapshot;
  natsConnected(): boolean;
  registryRegistered(): boolean;
  /** Open MCP sessions per hosted server. */
  sessions(): Iterable<[server: string, sessions: number]>;
  /** Most MCP sessions the node holds at once (all servers together). */
  sessionLimit(): number;
  /** Per server: its kind and whether it answers its health ping. */
  serving(): Iterable<[server: string, kind: string, serving: boolean]>;
  /** Open tasks (created, not yet seen to end) per hosted server. */
  tasks(): Iterable<[server: string, tasks: number]>;
  /** Latest event-loop delay sample (p99 of the last report window), ms. */
  eventLoopLagMs(): number;
  /** Time the process was frozen since it started (SIGSTOP, VM pause), ms. */
  frozenMs(): number;
}

/** Identity of the agent process, exposed as `flotilla_agent_info`. */
export interface AgentMetricsInfo {
  nodeId: string;
  version: string;
  zone: string | undefined;
}

/** A rendered `/metrics` response. */
export interface MetricsExposition {
  contentType: string;
  body: string;
}

/**
 * The agent's Prometheus metrics (names in docs/observability.md). Counters and histograms are fed by the
 * {@link CallTracker}'s events, at the points where it already decides a call's fate, so there is no
 * second book of calls; gauges read the node's state when scraped. Labels are the hosted server and tool
 * only: call and session ids never become labels.
 */
export class AgentMetrics {
  readonly registry: Registry;
  private readonly calls: Counter<'server' | 'tool' | 'outcome'>;
  private readonly duration: Histogram<'server' | 'tool'>;
  private readonly queueWait: Histogram;
  private readonly reports: Counter<'kind'>;
  private readonly sessionsRefused: Counter<'server'>;
  private readonly sessionsExpired: Counter<'server'>;
  private readonly tools = new Map<string, ReadonlySet<string>>();
  private readonly onStarted = (call: TrackedCall): void => this.callStarted(call);
  private readonly onRejected = (identity: CallIdentity, reason: RejectionReason): void => this.callRejected(identity, reason);
  private readonly onFinished = (call: TrackedCall, outcome: CallOutcome): void => this.callFinished(call, outcome);

  constructor(private readonly tracker: CallTracker, sources: AgentMetricsSources, info: AgentMetricsInfo) {
    const p = AGENT_METRICS_PREFIX;
    const registry = createMetricsRegistry(p);
    this.registry = registry;
    const registers = [registry];

    new Gauge({
      name: `${p}_info`,
      help: 'Identity of this agent; always 1. Join on instance to name series by node id.',
      labelNames: ['node_id', 'version', 'zone'],
      registers,
    }).set({ node_id: info.nodeId, version: info.version, zone: info.zone ?? '' }, 1);
    this.calls = new Counter({
      name: `${p}_calls_total`,
      help: 'Tool calls that reached this node, by hosted server, tool and outcome (refusals included).',
      labelNames: ['server', 'tool', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: `${p}_call_duration_seconds`,
      help: 'Time from a call getting its slot to its answer (queue wait excluded), for every call that ran.',
      labelNames: ['server', 'tool'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: `${p}_queue_wait_seconds`,
      help: 'Time admitted calls waited for a slot before running.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.reports = new Counter({
      name: `${p}_reports_published_total`,
      help: 'Messages published on NATS, by kind (load, progress, event).',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of REPORT_KINDS) this.reports.inc({ kind }, 0);
    this.sessionsRefused = new Counter({
      name: `${p}_sessions_refused_total`,
      help: 'MCP sessions refused at initialize because the node held its maximum of sessions (--max-sessions), by the server asked for.',
      labelNames: ['server'],
      registers,
    });
    this.sessionsExpired = new Counter({
      name: `${p}_sessions_expired_total`,
      help: 'MCP sessions closed for being idle (no open request, call or task for the idle timeout), by hosted server.',
      labelNames: ['server'],
      registers,
    });

    const gauge = (name: string, help: string, read: () => number): void => {
      const g: Gauge = new Gauge({ name: `${p}_${name}`, help, registers, collect: () => g.set(read()) });
    };
    gauge('inflight_calls', 'Calls running on this node now.', () => sources.load().inflight);
    gauge('queued_calls', 'Admitted calls waiting for a slot now.', () => sources.load().queued);
    gauge('capacity', 'Calls that may run at once on this node.', () => sources.load().capacity);
    gauge('draining', '1 while the node drains (refuses new calls), else 0.', () => (sources.load().draining ? 1 : 0));
    gauge('nats_connected', '1 while the NATS connection is up, else 0.', () => (sources.natsConnected() ? 1 : 0));
    gauge('registry_registered', '1 while this node is registered in the registry, else 0.', () => (sources.registryRegistered() ? 1 : 0));
    gauge('event_loop_lag_seconds', 'Event-loop delay, p99 over the last load-report window (as in the load report).', () => sources.eventLoopLagMs() / 1000);
    // A counter read at scrape time: the freeze clock keeps the total.
    const frozen: Counter = new Counter({
      name: `${p}_frozen_seconds_total`,
      help: 'Time the process was frozen (SIGSTOP, VM pause), left out of its latency statistics.',
      registers,
      collect: () => {
        frozen.reset();
        frozen.inc(sources.frozenMs() / 1000);
      },
    });
    const sessions: Gauge<'server'> = new Gauge({
      name: `${p}_sessions`,
      help: 'Open MCP sessions per hosted server.',
      labelNames: ['server'],
      registers,
      collect: () => {
        sessions.reset(); // a server removed from the agent leaves no series behind
        for (const [server, count] of sources.sessions()) sessions.set({ server }, count);
      },
    });
    gauge('session_limit', 'Most MCP sessions this node holds at once, all hosted servers together (--max-sessions).', () => sources.sessionLimit());
    const tasks: Gauge<'server'> = new Gauge({
      name: `${p}_tasks`,
      help: 'Tasks (MCP 2025-11-25) created on this node and not yet seen to end, per hosted server; their work runs outside inflight_calls.',
      labelNames: ['server'],
      registers,
      collect: () => {
        tasks.reset();
        for (const [server, count] of sources.tasks()) tasks.set({ server }, count);
      },
    });
    const serving: Gauge<'server' | 'kind'> = new Gauge({
      name: `${p}_server_serving`,
      help: 'Whether a server answers its health ping (1) or not (0), per server and kind (module, stdio, remote); what gRPC health reports per server.',
      labelNames: ['server', 'kind'],
      registers,
      collect: () => {
        serving.reset();
        for (const [server, kind, up] of sources.serving()) serving.set({ server, kind }, up ? 1 : 0);
      },
    });

    tracker.on('started', this.onStarted);
    tracker.on('rejected', this.onRejected);
    tracker.on('finished', this.onFinished);
  }

  /**
   * The tools a hosted server lists now. Their call counters start at 0 for every outcome, so `rate()` and
   * `increase()` see the first call of each; later calls naming other tools are labelled
   * {@link UNKNOWN_TOOL_LABEL}.
   */
  setHostedTools(server: string, tools: readonly string[]): void {
    this.tools.set(server, new Set(tools));
    for (const tool of tools) for (const outcome of CALL_OUTCOME_LABELS) this.calls.inc({ server, tool, outcome }, 0);
  }

  /** A hosted server: its session counters start at 0. */
  serverHosted(server: string): void {
    this.sessionsRefused.inc({ server }, 0);
    this.sessionsExpired.inc({ server }, 0);
  }

  /** Counts an `initialize` refused for the session cap. */
  sessionRefused(server: string): void {
    this.sessionsRefused.inc({ server });
  }

  /** Counts a session closed for being idle. */
  sessionExpired(server: string): void {
    this.sessionsExpired.inc({ server });
  }

  /** Counts a message NATS accepted. */
  reportPublished(kind: ReportKind): void {
    this.reports.inc({ kind });
  }

  /** The exposition in Prometheus text format. */
  async render(): Promise<MetricsExposition> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stops listening to the tracker. */
  stop(): void {
    this.tracker.off('started', this.onStarted);
    this.tracker.off('rejected', this.onRejected);
    this.tracker.off('finished', this.onFinished);
  }

  private toolLabel(server: string, tool: string): string {
    return this.tools.get(server)?.has(tool) ? tool : UNKNOWN_TOOL_LABEL;
  }

  private callStarted(call: TrackedCall): void {
    const wait = call.queueWaitSeconds;
    if (wait !== undefined) this.queueWait.observe(wait);
  }

  private callRejected(identity: CallIdentity, reason: RejectionReason): void {
    this.calls.inc({ server: identity.server, tool: this.toolLabel(identity.server, identity.tool), outcome: rejectionLabel(reason) });
  }

  private callFinished(call: TrackedCall, outcome: CallOutcome): void {
    const { server } = call.identity;
    const tool = this.toolLabel(server, call.identity.tool);
    this.calls.inc({ server, tool, outcome: outcomeLabel(outcome) });
    const ran = call.runSeconds(performance.now());
    if (ran !== undefined) this.duration.observe({ server, tool }, ran);
  }
}
