import { randomUUID } from 'node:crypto';
import { PROTOCOL_VERSION, subjects, type HostedServer, type NodeRecord, type PingData, type Subjects } from '@flotilla/protocol';
import { NodeAnnouncer, NodeIdCollisionError, createRegistry, type Registry } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import type { NatsConnection } from '@nats-io/transport-node';
import { resolveServerSpecs, type ResolvedAgentOptions, type ServerSpec } from './AgentOptions.js';
import { NodeRecordSource } from './announce/NodeRecordSource.js';
import { agentVersion } from './announce/agentVersion.js';
import { CallTracker } from './calls/CallTracker.js';
import { EventLoopLag } from './health/EventLoopLag.js';
import { ProcessFreezeClock } from './health/ProcessFreezeClock.js';
import { GrpcHealthServer } from './health/GrpcHealthServer.js';
import type { HostedServerRuntime } from './hosting/HostedServerRuntime.js';
import { ServerRuntimes, type ServersChange } from './hosting/ServerRuntimes.js';
import { AgentHttpServer, type HealthReport } from './http/AgentHttpServer.js';
import { SessionBudget } from './http/SessionBudget.js';
import { AgentMetrics } from './metrics/AgentMetrics.js';
import { ControlResponder } from './nats/ControlResponder.js';
import { NatsLink } from './nats/NatsLink.js';
import { ReportPublisher } from './nats/ReportPublisher.js';
import { MeshGate } from './http/MeshGate.js';
import { AgentSecurity } from './security/AgentSecurity.js';

/** A started agent, as {@link startAgent} returns it. */
export interface RunningAgent {
  readonly nodeId: string;
  /** Base URL of the agent's HTTP server; a hosted server is at `url + '/mcp/<name>'`. */
  readonly url: string;
  /** host:port of the grpc.health.v1 service. */
  readonly grpcAddress: string;
  /** The hosted servers as announced (current tool digests). */
  readonly servers: HostedServer[];
  /** Resolves once the agent has stopped, whatever stopped it (drain over NATS, a signal, `stop`). */
  readonly stopped: Promise<void>;
  /**
   * Refuses new calls, lets running and queued ones (and open tasks) finish within `graceMs`, then
   * deregisters and stops.
   */
  drain(graceMs?: number): Promise<void>;
  /** Stops at once: deregisters, ends every session (running calls are cancelled) and closes. */
  stop(): Promise<void>;
  /** What `/readyz` reports. */
  health(): HealthReport;
  /**
   * Serves `servers` from now on, without a restart: new ones start and join, removed ones leave once
   * their calls finished (within the drain grace period), changed ones are replaced; the registry record
   * is updated. Rejects on invalid specs (nothing changes then).
   */
  applyServers(servers: readonly ServerSpec[]): Promise<ServersChangeSummary>;
}

/** What {@link RunningAgent.applyServers} did. */
export type ServersChangeSummary = Omit<ServersChange, 'retired'>;

/** How long registry and NATS steps of a shutdown may take before the agent goes on without them. */
const SHUTDOWN_STEP_MS = 3000;
/** Longest a hosted server may take to answer a health ping. */
const SERVER_PING_TIMEOUT_MS = 2000;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([work, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())]);
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * One node of the mesh: hosts MCP servers over Streamable HTTP, tracks every call, announces itself in
 * the registry, reports load and progress on NATS, answers control requests and serves gRPC health.
 */
export class Agent implements RunningAgent {
  readonly nodeId: string;
  url = '';
  grpcAddress = '';
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  private readonly instanceId = randomUUID();
  private readonly startedAt = Date.now();
  private readonly subjects: Subjects;
  private readonly tracker: CallTracker;
  private readonly lag = new EventLoopLag();
  private readonly freezes: ProcessFreezeClock;
  private readonly served: ServerRuntimes;
  private readonly link: NatsLink;
  private readonly reports: ReportPublisher;
  private readonly control: ControlResponder;
  private readonly metrics: AgentMetrics;
  private readonly sessionBudget: SessionBudget;
  private readonly security: AgentSecurity;
  private http: AgentHttpServer | undefined;
  private grpc: GrpcHealthServer | undefined;
  private records: NodeRecordSource | undefined;
  private registry: Registry | undefined;
  private announcer: NodeAnnouncer | undefined;
  private announcerSetup: Promise<void> = Promise.resolve();
  private fatalRegistryError: Error | undefined;
  private registeredOnce = false;
  private joinedPublished = false;
  private natsRttMs: number | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private healthTicking = false;
  private phase: 'starting' | 'running' | 'draining' | 'stopping' | 'stopped' = 'starting';
  private drainPromise: Promise<void> | undefined;
  private serversChange: Promise<unknown> = Promise.resolve();
  private serversChangeError: string | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly options: ResolvedAgentOptions, private readonly logger: Logger) {
    this.nodeId = options.nodeId;
    this.subjects = subjects(options.prefix);
    this.stopped = new Promise((resolve) => {
      this.resolveStopped = resolve;
    });
    this.freezes = new ProcessFreezeClock({
      onFreeze: (ms) => logger.warn({ frozenMs: Math.round(ms) }, 'process was frozen (SIGSTOP, VM pause?); the time is left out of latency statistics'),
    }).start();
    this.tracker = new CallTracker({ nodeId: options.nodeId, capacity: options.capacity, maxQueue: options.maxQueue, freezeClock: this.freezes });
    this.sessionBudget = new SessionBudget(options.nodeId, options.maxSessions);
    // Tokens are for this node's announced origin; `url` is known once the HTTP server listens.
    this.security = new AgentSecurity({ options: options.security, nodeId: options.nodeId, audience: () => (this.url ? new URL(this.url).origin : ''), logger });
    this.link = new NatsLink({ settings: options.nats, name: `flotilla-agent-${options.nodeId}`, logger });
    this.metrics = new AgentMetrics(
      this.tracker,
      {
        load: () => this.tracker.load(),
        natsConnected: () => this.link.state === 'connected',
        registryRegistered: () => this.announcer?.status().state === 'registered',
        sessions: () => this.runtimes.map((r): [string, number] => [r.name, r.endpoint.sessionCount]),
        serving: () => this.runtimes.map((r): [string, string, boolean] => [r.name, r.spec.kind, r.serving]),
        sessionLimit: () => this.sessionBudget.limit,
        tasks: () => this.openTasksByServer(),
        eventLoopLagMs: () => this.lag.latestMs,
        frozenMs: () => this.freezes.frozenMs(),
      },
      { nodeId: options.nodeId, version: agentVersion(), zone: options.zone },
    );
    this.served = new ServerRuntimes({
      nodeId: options.nodeId,
      agentVersion: agentVersion(),
      tracker: this.tracker,
      logger,
      sessionIdleTimeoutMs: options.sessionIdleTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
      budget: this.sessionBudget,
      sessionEvents: { refused: (server) => this.metrics.sessionRefused(server), expired: (server) => this.metrics.sessionExpired(server) },
      serverAdded: (name) => this.metrics.serverHosted(name),
      toolsChanged: (name, catalog) => {
        this.metrics.setHostedTools(name, catalog.tools.map((t) => t.name));
        this.onToolsChanged();
      },
    });
    this.reports = new ReportPublisher({
      nodeId: options.nodeId,
      subjects: this.subjects,
      link: this.link,
      tracker: this.tracker,
      lag: this.lag,
      onPublished: (kind) => this.metrics.reportPublished(kind),
      sign: (subject, payload) => this.security.signMessage(subject, payload),
    });
    this.control = new ControlResponder(
      this.subjects.control(options.nodeId),
      {
        nodeId: options.nodeId,
        state: () => {
          const load = this.tracker.load();
          return { draining: this.tracker.draining, inflight: load.inflight, queued: load.queued };
        },
        drain: (graceMs) => void this.drain(graceMs),
        authorize: (received) => this.security.checkControl(received),
      },
      logger,
    );
  }

  get servers(): HostedServer[] {
    return this.runtimes.map((r) => r.describe());
  }

  private get runtimes(): readonly HostedServerRuntime[] {
    return this.served.all();
  }

  /** Loads the servers, starts serving, and joins the mesh (or keeps trying to, when NATS is down). */
  async start(): Promise<void> {
    const o = this.options;
    await this.served.startAll(o.servers);

    this.http = new AgentHttpServer({
      host: o.host,
      port: o.port,
      allowedHosts: o.allowedHosts,
      endpoints: () => this.runtimes.map((r) => r.endpoint),
      health: () => this.health(),
      metrics: () => this.metrics.render(),
      ...(this.security.mesh ? { meshGate: new MeshGate(this.security.mesh) } : {}),
      openMetrics: this.security.openMetrics,
      limits: { headersTimeoutMs: o.headersTimeoutMs, bodyTimeoutMs: o.bodyTimeoutMs, maxConnections: o.maxConnections, keepAliveTimeoutMs: 65_000 },
      logger: this.logger,
    });
    const port = await this.http.listen();
    this.url = `http://${urlHost(o.advertiseHost)}:${port}`;
    this.grpc = await GrpcHealthServer.start(o.host, o.grpcPort, this.runtimes.map((r) => r.name));
    this.grpcAddress = `${urlHost(o.advertiseHost)}:${this.grpc.port}`;
    this.phase = 'running';
    this.updateGrpcHealth();

    this.records = new NodeRecordSource(
      {
        nodeId: o.nodeId,
        instanceId: this.instanceId,
        mcpBaseUrl: this.url,
        version: agentVersion(),
        zone: o.zone,
        healthAddress: this.grpcAddress,
        capacity: o.capacity,
        startedAt: this.startedAt,
        keys: this.security.identity,
      },
      () => this.servers,
      () => this.tracker.draining,
    );

    this.link.on('connection', (nc) => {
      if (this.phase === 'stopping' || this.phase === 'stopped') return;
      this.control.attach(nc);
      // Only the nats-kv registry lives on the NATS connection; Consul's announcer is independent of it.
      if (o.registryKind === 'nats-kv') this.announcerSetup = this.announceThroughNats(nc);
    });
    this.link.on('state', (state) => {
      if (state === 'connected') this.maybePublishJoined();
    });
    if (o.registryKind !== 'nats-kv') {
      this.announcerSetup = this.startAnnouncer(createRegistry({ kind: o.registryKind, logger: this.logger, prefix: o.prefix, timings: this.timings(), ...this.recordSigning() }));
    }
    await this.link.start();
    // With NATS up (or a registry that needs none), join before saying ready; a node id collision fails the start.
    await this.announcerSetup;
    if (this.fatalRegistryError) throw this.fatalRegistryError;

    this.healthTimer = setInterval(() => void this.healthTick(), o.heartbeatIntervalMs);
    this.healthTimer.unref();
    void this.healthTick();
    // A logger already bound to the node id would print the field twice.
    const nodeIdField = this.logger.bindings().nodeId === o.nodeId ? {} : { nodeId: o.nodeId };
    const security = this.security.summary();
    this.logger.info({ signing: security.signing, control: security.control, mcp: security.mcp }, security.open.length === 0 ? 'security: node key, operator-signed control and mesh tokens on' : 'security: some protections are off');
    for (const what of security.open) this.logger.warn(`security off: ${what}`);
    this.logger.info(
      { ...nodeIdField, url: this.url, grpc: this.grpcAddress, servers: this.runtimes.map((r) => r.name), nats: this.link.state, registry: this.announcer?.status().state ?? 'waiting for NATS' },
      'agent ready',
    );
  }

  drain(graceMs: number = this.options.drainGraceMs): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.drainPromise ??= this.runDrain(graceMs);
    return this.drainPromise;
  }

  stop(): Promise<void> {
    return this.shutdown('stopped');
  }

  health(): HealthReport {
    const reasons: string[] = [];
    if (this.phase === 'draining') reasons.push('draining');
    if (this.phase === 'stopping' || this.phase === 'stopped') reasons.push('stopping');
    for (const r of this.runtimes) if (!r.serving) reasons.push(`server ${r.name} does not answer`);
    if (this.serversChangeError) reasons.push(`servers change failed: ${this.serversChangeError}`);
    const nats = this.link.state;
    if (nats !== 'connected' && this.phase !== 'stopped') reasons.push(`NATS ${nats}: load reports paused`);
    const registry = this.announcer?.status();
    if (this.fatalRegistryError) reasons.push(`registry: ${this.fatalRegistryError.message}`);
    else if (!registry) reasons.push('registry: waiting for NATS');
    else if (registry.state !== 'registered' && registry.state !== 'stopped') reasons.push(`registry ${registry.state}${registry.error ? `: ${registry.error}` : ''}`);
    const load = this.tracker.load();
    // A mount that does not answer is that server's trouble (NOT_SERVING on its own gRPC service, refused
    // sessions), not the node's: the node stays ready for the servers that work.
    const ready = this.phase === 'running' && this.runtimes.every((r) => r.serving || r.mounted);
    return {
      live: this.phase !== 'stopping' && this.phase !== 'stopped',
      ready,
      status: this.pingStatus(reasons),
      reasons,
      nodeId: this.nodeId,
      instanceId: this.instanceId,
      phase: this.phase,
      nats,
      natsRttMs: this.natsRttMs,
      registry: registry ?? { state: 'waiting for NATS' },
      servers: Object.fromEntries(this.runtimes.map((r) => [r.name, r.report()])),
      sessions: { open: this.sessionBudget.open, limit: this.sessionBudget.limit },
      load,
      eventLoopLagMs: this.lag.latestMs,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  /** Open tasks of every hosted server (0 for those without). */
  private openTasksByServer(): Array<[string, number]> {
    const open = new Map(this.tracker.openTasks());
    return this.runtimes.map((r): [string, number] => [r.name, open.get(r.name) ?? 0]);
  }

  private recordSigning(): { signRecord?: (record: NodeRecord) => string } {
    const security = this.security;
    return security.signer ? { signRecord: (record) => security.signRecord(record)! } : {};
  }

  private timings(): { heartbeatIntervalMs: number; staleAfterMs: number } {
    return { heartbeatIntervalMs: this.options.heartbeatIntervalMs, staleAfterMs: this.options.staleAfterMs };
  }

  private async announceThroughNats(nc: NatsConnection): Promise<void> {
    // A replacement connection (the client gave up on the old one): announce through the new one.
    if (this.announcer) await this.announcer.stop(false);
    await this.registry?.close();
    await this.startAnnouncer(createRegistry({ kind: 'nats-kv', nc, logger: this.logger, prefix: this.options.prefix, timings: this.timings(), ...this.recordSigning() }));
  }

  private async startAnnouncer(registry: Registry): Promise<void> {
    const records = this.records;
    if (!records) return;
    this.registry = registry;
    const announcer = new NodeAnnouncer({
      registry,
      record: () => records.record(),
      ping: () => this.ping(),
      logger: this.logger,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      onStateChange: (state, error) => {
        if (state === 'registered') {
          this.registeredOnce = true;
          this.maybePublishJoined();
        } else if (state === 'fatal' && error) {
          this.fatalRegistryError = error;
          this.logger.error({ err: error }, 'registry refused this node; serving unannounced');
        }
      },
    });
    this.announcer = announcer;
    try {
      await announcer.start();
    } catch (err) {
      this.fatalRegistryError = err instanceof Error ? err : new Error(String(err));
      if (!(err instanceof NodeIdCollisionError)) this.logger.error({ err }, 'registration failed');
    }
  }

  private maybePublishJoined(): void {
    if (!this.registeredOnce || this.joinedPublished || this.link.state !== 'connected') return;
    if (this.tracker.draining) return;
    this.joinedPublished = this.reports.publishEvent('joined');
    if (this.joinedPublished) this.reports.publishLoad();
  }

  private ping(): PingData {
    const load = this.tracker.load();
    const reasons = this.health().reasons;
    return {
      at: Date.now(),
      ...(this.natsRttMs !== undefined ? { natsRttMs: this.natsRttMs } : {}),
      inflight: load.inflight,
      queued: load.queued,
      eventLoopLagMs: this.lag.latestMs,
      uptimeS: Math.round((Date.now() - this.startedAt) / 100) / 10,
      status: this.pingStatus(reasons),
    };
  }

  private pingStatus(reasons: string[]): PingData['status'] {
    if (this.tracker.draining) return 'draining';
    // Registry trouble is not the node's health: it is reported separately (and shows in the registry anyway).
    return reasons.some((r) => !r.startsWith('registry')) ? 'degraded' : 'ok';
  }

  private async healthTick(): Promise<void> {
    if (this.healthTicking || this.phase === 'stopping' || this.phase === 'stopped') return;
    this.healthTicking = true;
    try {
      this.natsRttMs = await this.link.rtt();
      const runtimes = [...this.runtimes];
      const results = await Promise.all(runtimes.map((r) => r.probe.ping(SERVER_PING_TIMEOUT_MS)));
      results.forEach((ok, i) => this.servingChanged(runtimes[i]!, ok));
      this.updateGrpcHealth();
    } finally {
      this.healthTicking = false;
    }
  }

  /** Records a ping result; a remote mount that stops answering ends its sessions, so routers look elsewhere. */
  private servingChanged(r: HostedServerRuntime, ok: boolean): void {
    if (r.serving === ok || !this.runtimes.includes(r)) return;
    r.serving = ok;
    this.logger.warn({ server: r.name, kind: r.spec.kind, serving: ok }, ok ? 'server answers again' : 'server stopped answering');
    if (!ok && r.spec.kind === 'remote') void r.endpoint.closeSessions('the remote server stopped answering');
  }

  applyServers(servers: readonly ServerSpec[]): Promise<ServersChangeSummary> {
    const specs = resolveServerSpecs(servers);
    // One change at a time, in the order asked.
    const run = this.serversChange.then(() => this.runServersChange(specs));
    this.serversChange = run.catch(() => {});
    return run;
  }

  private async runServersChange(specs: Parameters<ServerRuntimes['apply']>[0]): Promise<ServersChangeSummary> {
    if (this.phase !== 'running') throw new Error(`the agent is ${this.phase}; servers cannot change now`);
    const { retired, ...summary } = await this.served.apply(specs);
    this.serversChangeError = summary.failed.length ? summary.failed.map((f) => `${f.name}: ${f.error}`).join('; ') : undefined;
    for (const r of retired) if (!this.runtimes.some((x) => x.name === r.name)) this.grpc?.setStatus(r.name, 'NOT_SERVING');
    this.updateGrpcHealth();
    if (summary.added.length || summary.removed.length || summary.changed.length) {
      this.logger.info({ added: summary.added, removed: summary.removed, changed: summary.changed }, 'servers changed');
      await this.announcer?.refresh().catch((err: unknown) => this.logger.warn({ err }, 'could not announce the changed servers'));
    }
    for (const f of summary.failed) this.logger.error({ server: f.name, error: f.error }, 'server could not be started; the previous state of it stays');
    // Routers learn of the change from the record; calls they already sent finish before the old runtimes go.
    for (const r of retired) void this.served.retire(r, this.options.drainGraceMs).catch((err: unknown) => this.logger.warn({ err, server: r.name }, 'could not retire a server cleanly'));
    return summary;
  }

  private updateGrpcHealth(): void {
    const grpc = this.grpc;
    if (!grpc) return;
    const up = this.phase === 'running';
    for (const r of this.runtimes) grpc.setStatus(r.name, up && r.serving ? 'SERVING' : 'NOT_SERVING');
    grpc.setStatus('', up && this.runtimes.every((r) => r.serving || r.mounted) ? 'SERVING' : 'NOT_SERVING');
  }

  private onToolsChanged(): void {
    if (this.phase !== 'running' && this.phase !== 'draining') return;
    void this.announcer?.refresh().catch((err: unknown) => this.logger.warn({ err }, 'could not re-announce after a tool change'));
  }

  private async runDrain(graceMs: number): Promise<void> {
    if (this.phase !== 'running' && this.phase !== 'starting') return this.stopPromise ?? Promise.resolve();
    this.phase = 'draining';
    this.tracker.startDraining();
    this.updateGrpcHealth();
    const load = this.tracker.load();
    this.logger.info({ graceMs, inflight: load.inflight, queued: load.queued, tasks: load.tasks }, 'draining');
    this.reports.publishEvent('draining', `grace ${graceMs} ms`);
    this.reports.publishLoad();
    if (this.announcer) await withTimeout(this.announcer.refresh().catch(() => {}), SHUTDOWN_STEP_MS);
    let graceTimer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.tracker.whenIdle().then(() => true),
      new Promise<boolean>((resolve) => {
        graceTimer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(graceTimer);
    if (!finished) {
      const left = this.tracker.load();
      this.logger.warn({ inflight: left.inflight, queued: left.queued, tasks: left.tasks, graceMs }, 'drain grace period over; cancelling the calls still open (and ending the sessions of open tasks)');
    }
    await this.shutdown(finished ? 'drained' : 'drain grace period over');
  }

  private shutdown(reason: string): Promise<void> {
    this.stopPromise ??= this.runShutdown(reason);
    return this.stopPromise;
  }

  private async runShutdown(reason: string): Promise<void> {
    this.phase = 'stopping';
    this.tracker.startDraining();
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.updateGrpcHealth();
    try {
      await this.announcerSetup.catch(() => {});
      // Never withdraw a record this process does not own: after a node id collision it is another agent's.
      const ownsRecord = this.registeredOnce && !(this.fatalRegistryError instanceof NodeIdCollisionError);
      if (this.announcer) await withTimeout(this.announcer.stop(ownsRecord), SHUTDOWN_STEP_MS);
      if (this.joinedPublished || ownsRecord) this.reports.publishEvent('left', reason);
      this.reports.stop();
      this.control.detach();
      // Sessions end, then mounted processes stop (a drain got here once their calls had finished).
      await this.served.stopAll();
      await this.http?.close();
      await this.grpc?.stop();
      await withTimeout(this.link.stop(), SHUTDOWN_STEP_MS);
      await this.registry?.close().catch(() => {});
      this.lag.stop();
      this.freezes.stop();
      this.metrics.stop();
      this.logger.info({ reason, protocol: PROTOCOL_VERSION }, 'agent stopped');
    } finally {
      this.phase = 'stopped';
      this.resolveStopped();
    }
  }
}
