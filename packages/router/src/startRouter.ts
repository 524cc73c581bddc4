import { subjects } from '@flotilla/protocol';
import { createRegistry } from '@flotilla/registry';
import { createLogger } from '@flotilla/telemetry';
import { connect } from '@nats-io/transport-node';
import { describeNats, natsConnectionOptions, resolveNatsSettings } from '@flotilla/trust';
import { Agent } from 'undici';
import { createBalancer } from './balancer/createBalancer.js';
import { Catalog } from './catalog/Catalog.js';
import type { CatalogChange } from './catalog/CatalogEntries.js';
import { MeshDiscovery } from './discovery/MeshDiscovery.js';
import { NodeLoadView } from './discovery/NodeLoadView.js';
import { randomBytes } from 'node:crypto';
import { ProfileListings } from './catalog/ProfileListings.js';
import { ReplicaBus } from './sessions/ReplicaBus.js';
import { ReplicaSessionCounts } from './sessions/ReplicaSessionCounts.js';
import { Sealer } from './sessions/Sealer.js';
import { NatsKvSessionStore } from './sessions/SessionStore.js';
import { SessionTokens } from './sessions/SessionTokens.js';
import { RouterPeer } from './endpoint/RouterPeer.js';
import { CallForwarder } from './forwarding/CallForwarder.js';
import { ToolSchemaGuard } from './upstream/ToolSchemaGuard.js';
import { UpstreamSessionPool } from './upstream/UpstreamSessionPool.js';
import { FrontHttpServer } from './front/FrontHttpServer.js';
import { HostOriginPolicy } from './front/HostOriginPolicy.js';
import { McpEndpoint } from './front/McpEndpoint.js';
import { SessionTable } from './front/SessionTable.js';
import { DEFAULT_ARGUMENT_CHECK_LIMITS, OffLoopArgumentValidator } from './front/validation/OffLoopArgumentValidator.js';
import { RouterMetrics } from './metrics/RouterMetrics.js';
import { CallActivityRecorder } from './ops/calls/CallActivityRecorder.js';
import { CallRateWindow } from './ops/calls/CallRateWindow.js';
import { CompositeCallObserver } from './ops/calls/CompositeCallObserver.js';
import { RecentFailures } from './ops/calls/RecentFailures.js';
import { loadDashboardAssets } from './ops/dashboard/DashboardAssets.js';
import { DashboardEndpoints } from './ops/dashboard/DashboardEndpoints.js';
import { DashboardModel } from './ops/dashboard/DashboardModel.js';
import { DashboardStream } from './ops/dashboard/DashboardStream.js';
import { OpsApi } from './ops/OpsApi.js';
import { ReadinessCheck } from './ops/ReadinessCheck.js';
import { resolveRouterOptions, type RouterOptions, type RunningRouter } from './RouterOptions.js';
import { AuthMetrics } from './auth/AuthMetrics.js';
import { FrontDoor } from './auth/FrontDoor.js';
import { OpsAccess } from './auth/OpsAccess.js';
import { OPS_COOKIE_TTL_MS, OpsCookie } from './auth/OpsCookie.js';
import { authConfigured, isLoopbackHost } from './auth/FrontDoorOptions.js';
import { SessionGuards } from './auth/SessionGuards.js';
import { FairScheduler } from './limits/FairScheduler.js';
import { IdentitySessions } from './limits/IdentitySessions.js';
import { TokenBuckets } from './limits/TokenBuckets.js';
import { RouterSecurity } from './security/RouterSecurity.js';
import { registerReportMetrics } from './security/reportMetrics.js';

/**
 * Starts a router: connects to NATS, follows the registry, opens upstream sessions to every live node's
 * servers, and serves the merged MCP endpoint at `http://<host>:<port>/mcp` plus the operations
 * endpoints. Logs `router ready` (with `url`) once listening. Throws when NATS is unreachable at start.
 */
export async function startRouter(options: RouterOptions): Promise<RunningRouter> {
  const startedAt = Date.now();
  const opts = resolveRouterOptions(options);
  const logger = opts.logger ?? createLogger({ name: 'router' });
  const names = subjects(opts.prefix);
  if (!authConfigured(opts.auth) && !isLoopbackHost(opts.host) && !opts.insecure) {
    throw new Error(
      `refusing to listen on ${opts.host} without authentication: configure a JWT issuer (--auth-issuer, --auth-audience, --auth-jwks-url) or API keys (--api-keys-file), or pass --insecure to run open (anyone who reaches the port may call every tool)`,
    );
  }

  const replicaTag = randomBytes(4).toString('hex');
  const security = new RouterSecurity(opts.security ?? {}, logger, replicaTag);
  const natsSettings = resolveNatsSettings({ ...opts.nats, servers: opts.natsUrl });
  const nc = await connect(natsConnectionOptions(natsSettings, { name: 'flotilla-router', maxReconnectAttempts: -1, reconnectTimeWait: 500 })).catch((err: unknown) => {
    const where = describeNats(natsSettings);
    throw new Error(`cannot connect to NATS at ${where.servers} (auth: ${where.auth}, TLS: ${where.tls}): ${(err as Error).message}`, { cause: err });
  });
  const registry = createRegistry({
    kind: opts.registryKind,
    logger,
    nc,
    prefix: opts.prefix,
    timings: { staleAfterMs: opts.staleAfterMs, heartbeatIntervalMs: opts.heartbeatIntervalMs },
  });
  const toolSchemas = new ToolSchemaGuard({ maxBytes: opts.maxToolSchemaBytes, maxDepth: opts.maxToolSchemaDepth }, logger, (server) => metrics?.toolRefused(server));
  const dispatchers = {
    calls: new Agent({
      connections: 256,
      connectTimeout: 5000,
      // Call streams stay quiet while a tool works; liveness comes from the watchdog, not from body timeouts.
      bodyTimeout: 0,
      headersTimeout: 60_000,
      keepAliveTimeout: 4000,
    }),
    // One standalone stream per upstream session stays open for the session's life: they get their own
    // connections, so they never take the calls' pool.
    streams: new Agent({ connectTimeout: 5000, bodyTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 4000 }),
    ...(security.credentials ? { credentials: security.credentials } : {}),
    toolSchemas,
  };

  let natsConnected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') natsConnected = false;
      else if (s.type === 'reconnect') natsConnected = true;
    }
  })().catch(() => {});
  const natsUp = (): boolean => natsConnected && !nc.isClosed();

  const catalog = new Catalog();
  const loadView = new NodeLoadView(nc, names, logger, security.reports);
  loadView.start();
  let metrics: RouterMetrics | undefined;
  const pool = new UpstreamSessionPool({
    dispatchers,
    limits: { maxSessions: opts.maxUpstreamSessions, idleTimeoutMs: opts.upstreamIdleTimeoutMs },
    logger,
    observer: {
      opened: (nodeId, server, ms) => metrics?.opened(nodeId, server, ms),
      closed: (reason) => metrics?.closed(reason),
      refused: () => metrics?.refused(),
    },
  });
  const discovery = new MeshDiscovery(
    registry,
    {
      catalog,
      dispatchers,
      pool,
      routerPeer: new RouterPeer(logger),
      logger,
      onBreakerChange: (nodeId, to) => metrics?.breakerTransition(nodeId, to),
      ...(opts.perNodeConcurrency ? { perNodeConcurrency: opts.perNodeConcurrency } : {}),
    },
    loadView,
    logger,
    undefined,
    security.discovery,
  );
  if (!opts.sessionKey) {
    logger.warn({ replica: replicaTag }, 'no session key configured (--session-key-file or FLOTILLA_SESSION_KEY): sessions live only as long as this router, and other replicas cannot take them up');
  }
  // Seals session ids, resume tickets and the dashboard's sign-in cookie: every replica with the same key opens them.
  const sealer = opts.sessionKey ? Sealer.fromBase64(opts.sessionKey) : Sealer.random();
  const tokens = new SessionTokens(sealer);
  // Records of sessions in use are touched every third of the idle timeout; twice it is the safety margin.
  const store = new NatsKvSessionStore(nc, names.sessionBucket, opts.sessionIdleTimeoutMs * 2, logger, () => natsUp());
  const sessions = new SessionTable({
    idleTimeoutMs: opts.sessionIdleTimeoutMs,
    store,
    logger,
    onExpired: () => metrics?.clientSessionExpired(),
    streamIdleTimeoutMs: opts.limits.streamIdleTimeoutMs || opts.sessionIdleTimeoutMs,
    touchEveryMs: Math.max(1000, Math.floor(opts.sessionIdleTimeoutMs / 3)),
  });
  const bus = new ReplicaBus({ nc, subjects: names, tag: replicaTag, logger, session: (sid) => sessions.bySid(sid) });
  bus.start();
  // The cap on sessions per identity counts every live replica's sessions (they say theirs over NATS).
  let replicaCounts: ReplicaSessionCounts | undefined;
  const identitySessions = new IdentitySessions(opts.limits.maxSessionsPerIdentity, {
    remote: { elsewhere: (principal) => replicaCounts?.elsewhere(principal) ?? 0 },
    onChange: () => replicaCounts?.changed(),
  });
  replicaCounts = new ReplicaSessionCounts({ nc, subjects: names, tag: replicaTag, logger, local: () => identitySessions.local() });
  replicaCounts.start();
  metrics = new RouterMetrics({
    nodes: () => discovery.listEndpoints(),
    catalogTools: () => catalog.listTools().length,
    catalogNodes: () => new Set(catalog.listServers().flatMap((s) => s.replicas)).size,
    clientSessions: () => sessions.size,
    upstreamSessions: () => pool.size,
    registryUp: () => discovery.registryStatus().reachable,
    natsConnected: natsUp,
    lastLoadReportAt: (nodeId) => loadView.snapshot(nodeId)?.loadReceivedAt,
  });
  const authMetrics = new AuthMetrics(metrics.registry);
  const frontDoor = await FrontDoor.create({
    options: opts.auth ?? {},
    logger,
    observer: authMetrics,
    // Clients list again: what they may see may have changed.
    onPolicyChange: () => sessions.broadcast({ tools: true, prompts: true, resources: true, replicas: false }),
  }).catch(async (err: unknown) => {
    replicaCounts.stop();
    bus.stop();
    await Promise.allSettled([store.stop(), nc.close()]);
    throw err;
  });
  const limits = opts.limits;
  const guards = new SessionGuards({
    policy: frontDoor.hasPolicy,
    scheduler: new FairScheduler({
      maxConcurrent: limits.maxConcurrentCalls,
      perClientConcurrency: limits.perClientConcurrency,
      perSessionConcurrency: limits.perSessionConcurrency,
      perClientQueue: limits.perClientQueue,
      maxQueued: limits.maxQueued,
      maxQueueWaitMs: limits.maxQueueWaitMs,
    }),
    ...(limits.perClientRate > 0 ? { clientRate: new TokenBuckets(limits.perClientRate, limits.perClientBurst ?? Math.max(1, Math.ceil(limits.perClientRate * 2))) } : {}),
    ...(limits.perSessionRate > 0 ? { sessionRate: new TokenBuckets(limits.perSessionRate, limits.perSessionBurst ?? Math.max(1, Math.ceil(limits.perSessionRate * 2))) } : {}),
    observer: authMetrics,
  });
  registerReportMetrics(metrics.registry, loadView, security.discovery.keys);
  const rates = new CallRateWindow();
  const failures = new RecentFailures();
  const observer = new CompositeCallObserver([metrics, new CallActivityRecorder(rates, failures)], logger);
  const forwarding = { maxAttempts: opts.maxAttempts, retryWindowMs: opts.retryWindowMs, hedgeReadOnly: opts.hedgeReadOnly };
  const forwarder = new CallForwarder({ directory: discovery, balancer: createBalancer(opts.strategy), callTimeoutMs: opts.callTimeoutMs, logger, observer, policy: forwarding });
  const validator = new OffLoopArgumentValidator({ budgetMs: opts.argumentCheckBudgetMs, maxPending: DEFAULT_ARGUMENT_CHECK_LIMITS.maxPending }, logger, (reason) => metrics?.argumentsUnchecked(reason));
  const profiles = new ProfileListings({ catalog, source: (nodeId) => discovery.endpoint(nodeId), logger });

  // Joins and leaves often come in bursts (a node's servers connect one by one): coalesce per tick.
  let pending: CatalogChange | undefined;
  catalog.onChange((change) => {
    if (!pending) {
      pending = { ...change };
      setImmediate(() => {
        const c = pending!;
        pending = undefined;
        if (c.tools || c.resources || c.prompts) {
          logger.info({ tools: catalog.listTools().length, servers: catalog.listServers().map((s) => s.name), change: c }, 'catalog changed');
        }
        sessions.broadcast(c);
      });
    } else {
      pending.tools ||= change.tools;
      pending.resources ||= change.resources;
      pending.prompts ||= change.prompts;
      pending.replicas ||= change.replicas;
    }
  });

  let policy: HostOriginPolicy | undefined;
  const mcp = new McpEndpoint({
    sessions,
    services: {
      catalog,
      forwarder,
      validator,
      toolSchemas,
      profiles,
      pool,
      servers: discovery,
      logger,
      clientRequestTimeoutMs: opts.callTimeoutMs,
      observer,
      tokens,
      replicaTag,
      reconnectGraceMs: opts.reconnectGraceMs,
      replicas: bus,
      store,
      touchEveryMs: Math.max(1000, Math.floor(opts.sessionIdleTimeoutMs / 3)),
      upstreamNodes: discovery,
      guards,
    },
    maxBodyBytes: opts.maxBodyBytes,
    maxSessions: opts.maxClientSessions,
    logger,
    onSessionRefused: () => metrics?.clientSessionRefused(),
    identitySessions,
    onIdentitySessionRefused: (caller) => authMetrics.sessionRefused(caller.label),
  });
  const readiness = new ReadinessCheck({
    discovery,
    catalog,
    registryKind: registry.kind,
    natsConnected: natsUp,
    clientSessions: () => sessions.size,
  });
  const ops = new OpsApi(discovery, catalog, loadView, readiness, opts.strategy, () => replicaCounts.describe());
  const dashboardModel = new DashboardModel({ discovery, registry, logger, catalog, loadView, readiness, rates, failures, strategy: opts.strategy, startedAt });
  const dashboardStream = new DashboardStream(dashboardModel, logger);
  const dashboardAssets = await loadDashboardAssets().catch((err: unknown) => {
    logger.error({ err }, 'cannot read the dashboard page files; /dashboard answers 500 (/api/v1/dashboard still works)');
    return undefined;
  });
  const dashboard = new DashboardEndpoints(dashboardModel, dashboardStream, dashboardAssets, logger);
  const opsAccess = new OpsAccess({ frontDoor, cookie: new OpsCookie(sealer, OPS_COOKIE_TTL_MS), logger });
  const front = new FrontHttpServer({ mcp, ops, hostPolicy: () => policy!, logger, metrics, dashboard, frontDoor, opsAccess, limits });

  discovery.start();
  dashboardModel.start();
  let port: number;
  try {
    port = await front.listen(opts.host, opts.port);
  } catch (err) {
    dashboardModel.stop();
    await discovery.stop();
    loadView.stop();
    await registry.close();
    await nc.close();
    await pool.stop(false);
    await Promise.all([dispatchers.calls.close(), dispatchers.streams.close()]);
    throw err;
  }
  policy = new HostOriginPolicy({ host: opts.host, port, ...(opts.allowedHosts ? { allowedHosts: opts.allowedHosts } : {}), ...(opts.allowedOrigins ? { allowedOrigins: opts.allowedOrigins } : {}) });
  const urlHost = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${urlHost}:${port}/mcp`;
  const dashboardUrl = `http://${urlHost}:${port}/dashboard`;
  if (frontDoor.enforcing) logger.info({ auth: frontDoor.describe() }, 'front door: clients must authenticate');
  else {
    logger.warn(
      { host: opts.host, port, auth: 'open' },
      isLoopbackHost(opts.host)
        ? 'ROUTER RUNS OPEN: no authentication is configured; anyone on this machine may call every tool (loopback only)'
        : 'ROUTER RUNS OPEN (--insecure): no authentication is configured; anyone who reaches this port may call every tool',
    );
  }
  security.logSummary(logger);
  logger.info({ url, dashboard: dashboardUrl, port, strategy: opts.strategy, registry: registry.kind, prefix: opts.prefix, replica: replicaTag, auth: frontDoor.enforcing ? 'on' : 'open' }, 'router ready');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info('router stopping');
      await sessions.closeAll();
      await validator.stop();
      bus.stop();
      replicaCounts.stop();
      frontDoor.stop();
      await store.stop();
      dashboardStream.close();
      dashboardModel.stop();
      await discovery.stop();
      await pool.stop(false);
      loadView.stop();
      await registry.close();
      await front.close();
      await nc.drain().catch(() => nc.close());
      await Promise.all([dispatchers.calls.close().catch(() => {}), dispatchers.streams.destroy().catch(() => {})]);
      logger.info('router stopped');
    })());

  return { url, port, stop };
}
