import type { Logger } from '../../packages/registry/test/support/testDeps.js';
import { formatGoDuration, parseGoDuration } from './goDuration.js';
import { GrpcHealthProbe } from './grpcHealthProbe.js';
import {
  isCheckStatus,
  validateServiceMeta,
  type CheckDefinition,
  type CheckStatusValue,
  type ServiceRegistration,
} from './standInRequests.js';

/** An error the HTTP layer answers with `status` and `message` as a text/plain body, like Consul does. */
export class StandInHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'StandInHttpError';
  }
}

/** Tuning of the stand-in's agent behaviour; defaults are Consul's. */
export interface StandInCatalogOptions {
  logger: Logger;
  /** Name of the one node the stand-in plays. */
  nodeName: string;
  /**
   * Consul's `check_update_interval` (default 5m): when a check's status stays the same and only its output
   * changes, the new output reaches the catalog only after this (randomised d/2..3d/2). Status changes are
   * written at once. 0 writes every output change at once.
   */
  checkUpdateIntervalMs: number;
  /** Consul clamps DeregisterCriticalServiceAfter to at least 1 minute. */
  deregisterCriticalMinimumMs: number;
  /** How often the reaper looks for services to deregister (Consul: 30 s). */
  reapIntervalMs: number;
  /** First raft index of a fresh catalog. */
  startIndex: number;
}

interface StandInService {
  ID: string;
  Service: string;
  Tags: string[];
  Address: string;
  Port: number;
  Meta: Record<string, string>;
  EnableTagOverride: boolean;
  Weights: { Passing: number; Warning: number };
  CreateIndex: number;
  ModifyIndex: number;
}

interface StandInCheck {
  CheckID: string;
  Name: string;
  Notes: string;
  ServiceID: string;
  ServiceName: string;
  Type: 'ttl' | 'grpc';
  Interval: string;
  Timeout: string;
  /** Status and output as the catalog (health endpoints) shows them. */
  Status: CheckStatusValue;
  Output: string;
  CreateIndex: number;
  ModifyIndex: number;
  /** Output as the agent last set it; reaches `Output` at once or after the check update interval. */
  localOutput: string;
  /** Last output a TTL update gave, quoted when the TTL expires. */
  ttlLastOutput: string;
  ttlMs?: number;
  grpc?: { probe: GrpcHealthProbe; intervalMs: number; timeoutMs: number };
  deregisterAfterMs?: number;
  criticalSince?: number;
  ttlTimer?: NodeJS.Timeout;
  grpcTimer?: NodeJS.Timeout;
  deferTimer?: NodeJS.Timeout;
  /** Raised whenever timers are (re)armed or disarmed, so a probe that finishes late knows it is obsolete. */
  generation: number;
  removed: boolean;
}

interface Waiter {
  service: string;
  minIndex: number;
  resolve: () => void;
}

/** Default output Consul's agent gives its own node check. */
const SERF_OUTPUT = 'Agent alive and reachable';

function invalidDuration(text: string): StandInHttpError {
  return new StandInHttpError(400, `Request decode failed: time: invalid duration "${text}"`);
}

function duration(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const ms = parseGoDuration(text);
  if (ms === undefined) throw invalidDuration(text);
  return ms;
}

/**
 * The state of the Consul stand-in: one agent node with its services and checks, the catalog view the
 * health endpoints read, a raft-like index that every write raises, blocking-query waiters, TTL expiry,
 * real gRPC health checks, the check-update-interval deferral of output-only changes, and the reaper of
 * services critical for longer than their DeregisterCriticalServiceAfter.
 */
export class StandInCatalog {
  private index: number;
  private readonly services = new Map<string, StandInService>();
  private readonly checks = new Map<string, StandInCheck>();
  private readonly serviceIndex = new Map<string, number>();
  private waiters: Waiter[] = [];
  private reaper: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly options: StandInCatalogOptions) {
    this.index = options.startIndex;
  }

  /** Starts (or resumes after {@link pause}) timers, probes and the reaper. */
  resume(): void {
    if (this.running) return;
    this.running = true;
    for (const check of this.checks.values()) this.arm(check);
    this.reaper = setInterval(() => this.reap(), this.options.reapIntervalMs);
    this.reaper.unref();
  }

  /** Stops every timer (the agent is down) and releases blocking waiters; state is kept. */
  pause(): void {
    this.running = false;
    if (this.reaper) clearInterval(this.reaper);
    for (const check of this.checks.values()) this.disarm(check);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  /** Stops everything and closes gRPC clients. */
  dispose(): void {
    this.pause();
    for (const check of this.checks.values()) check.grpc?.probe.close();
  }

  /** The catalog index of a service's health result (X-Consul-Index); at least 1. */
  indexOf(serviceName: string): number {
    return Math.max(1, this.serviceIndex.get(serviceName) ?? this.index);
  }

  /** Resolves when the service's index passes `minIndex`, or after `waitMs` plus up to wait/16 of jitter. */
  waitForChange(serviceName: string, minIndex: number, waitMs: number): Promise<void> {
    if (this.indexOf(serviceName) > minIndex || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = { service: serviceName, minIndex, resolve: () => undefined };
      const timer = setTimeout(() => waiter.resolve(), waitMs + Math.random() * (waitMs / 16));
      waiter.resolve = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      };
      this.waiters.push(waiter);
    });
  }

  /** `PUT /v1/agent/service/register`. */
  registerService(reg: ServiceRegistration, replaceExistingChecks: boolean): StandInService {
    if (!reg.Name) throw new StandInHttpError(400, 'Missing service name');
    const metaError = validateServiceMeta(reg.Meta ?? {});
    if (metaError) throw new StandInHttpError(400, `Invalid Service Meta: ${metaError}`);
    const id = reg.ID || reg.Name;
    const definitions = reg.Checks ?? (reg.Check ? [reg.Check] : []);
    const planned = definitions.map((def, i) => this.planCheck(def, id, i, definitions.length));

    this.index += 1;
    const previous = this.services.get(id);
    const service: StandInService = {
      ID: id,
      Service: reg.Name,
      Tags: reg.Tags ?? [],
      Address: reg.Address ?? '',
      Port: reg.Port ?? 0,
      Meta: reg.Meta ?? {},
      EnableTagOverride: reg.EnableTagOverride ?? false,
      Weights: reg.Weights ?? { Passing: 1, Warning: 1 },
      CreateIndex: previous?.CreateIndex ?? this.index,
      ModifyIndex: this.index,
    };
    this.services.set(id, service);

    const keep = new Set<string>();
    for (const plan of planned) {
      keep.add(plan.CheckID);
      const prior = this.checks.get(plan.CheckID);
      if (prior) this.remove(prior, false);
      // Like Consul's agent, a re-registered check keeps its current status and output (no flapping).
      const status = prior ? prior.Status : plan.initialStatus;
      const check: StandInCheck = {
        CheckID: plan.CheckID,
        Name: plan.Name,
        Notes: plan.Notes,
        ServiceID: id,
        ServiceName: reg.Name,
        Type: plan.type,
        Interval: plan.interval,
        Timeout: plan.timeout,
        Status: status,
        Output: prior?.Output ?? '',
        CreateIndex: prior?.CreateIndex ?? this.index,
        ModifyIndex: this.index,
        localOutput: prior?.localOutput ?? '',
        ttlLastOutput: prior?.ttlLastOutput ?? '',
        ...(plan.ttlMs !== undefined ? { ttlMs: plan.ttlMs } : {}),
        ...(plan.grpc ? { grpc: { probe: new GrpcHealthProbe(plan.grpc.target), intervalMs: plan.grpc.intervalMs, timeoutMs: plan.grpc.timeoutMs } } : {}),
        ...(plan.deregisterAfterMs !== undefined ? { deregisterAfterMs: plan.deregisterAfterMs } : {}),
        ...(status === 'critical' ? { criticalSince: prior?.criticalSince ?? Date.now() } : {}),
        generation: 0,
        removed: false,
      };
      this.checks.set(check.CheckID, check);
      if (this.running) this.arm(check);
    }
    if (replaceExistingChecks) {
      for (const check of [...this.checks.values()]) if (check.ServiceID === id && !keep.has(check.CheckID)) this.remove(check, true);
    }
    this.touch(reg.Name);
    if (previous && previous.Service !== reg.Name) this.touch(previous.Service);
    this.options.logger.info({ serviceId: id, service: reg.Name, checks: [...keep] }, 'consul stand-in registered service');
    return service;
  }

  /** `PUT /v1/agent/service/deregister/:id`. */
  deregisterService(id: string, reason = 'deregistered'): void {
    const service = this.services.get(id);
    if (!service) throw new StandInHttpError(404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
    this.services.delete(id);
    for (const check of [...this.checks.values()]) if (check.ServiceID === id) this.remove(check, true);
    this.index += 1;
    this.touch(service.Service);
    this.options.logger.info({ serviceId: id, reason }, `consul stand-in ${reason} service`);
  }

  /** The service a check or service id belongs to, for ACL decisions. */
  serviceNameOf(serviceId: string): string | undefined {
    return this.services.get(serviceId)?.Service;
  }

  checkById(id: string): { ServiceName: string; Type: string } | undefined {
    return this.checks.get(id);
  }

  /** `PUT /v1/agent/check/update/:id` (and pass/warn/fail). */
  updateTtlCheck(id: string, status: string, output: string): void {
    if (!isCheckStatus(status)) throw new StandInHttpError(400, `Invalid check status: '${status}'`);
    const check = this.checks.get(id);
    if (!check) throw new StandInHttpError(404, `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
    if (check.Type !== 'ttl') throw new StandInHttpError(500, `CheckID "${id}" does not have associated TTL`);
    const limit = 4096;
    const bytes = Buffer.from(output);
    const text = bytes.length > limit ? `${bytes.subarray(0, limit).toString()} ... (captured ${limit} of ${bytes.length} bytes)` : output;
    check.ttlLastOutput = text;
    this.setStatus(check, status, text);
    if (this.running) this.armTtl(check);
  }

  /** `GET /v1/health/service/:service` entries. */
  healthEntries(serviceName: string, filter: { passing: boolean; tag?: string }): unknown[] {
    const node = {
      ID: '6f8a1a0e-5b1c-4c1e-9d7e-standin00001',
      Node: this.options.nodeName,
      Address: '127.0.0.1',
      Datacenter: 'dc1',
      TaggedAddresses: { lan: '127.0.0.1', lan_ipv4: '127.0.0.1', wan: '127.0.0.1', wan_ipv4: '127.0.0.1' },
      Meta: { 'consul-network-segment': '' },
      CreateIndex: 1,
      ModifyIndex: 1,
    };
    const serfHealth = {
      Node: this.options.nodeName,
      CheckID: 'serfHealth',
      Name: 'Serf Health Status',
      Status: 'passing',
      Notes: '',
      Output: SERF_OUTPUT,
      ServiceID: '',
      ServiceName: '',
      ServiceTags: [],
      Type: '',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: 1,
      ModifyIndex: 1,
    };
    const entries: unknown[] = [];
    const services = [...this.services.values()].filter((s) => s.Service === serviceName && (!filter.tag || s.Tags.includes(filter.tag)));
    services.sort((a, b) => a.ID.localeCompare(b.ID));
    for (const service of services) {
      const checks = [...this.checks.values()].filter((c) => c.ServiceID === service.ID).sort((a, b) => a.CheckID.localeCompare(b.CheckID));
      if (filter.passing && checks.some((c) => c.Status !== 'passing')) continue;
      entries.push({
        Node: node,
        Service: {
          Kind: '',
          ID: service.ID,
          Service: service.Service,
          Tags: service.Tags,
          Address: service.Address,
          Meta: Object.keys(service.Meta).length > 0 ? service.Meta : null,
          Port: service.Port,
          Weights: service.Weights,
          EnableTagOverride: service.EnableTagOverride,
          Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
          Connect: {},
          PeerName: '',
          CreateIndex: service.CreateIndex,
          ModifyIndex: service.ModifyIndex,
        },
        Checks: [
          serfHealth,
          ...checks.map((c) => ({
            Node: this.options.nodeName,
            CheckID: c.CheckID,
            Name: c.Name,
            Status: c.Status,
            Notes: c.Notes,
            Output: c.Output,
            ServiceID: c.ServiceID,
            ServiceName: c.ServiceName,
            ServiceTags: service.Tags,
            Type: c.Type,
            Interval: c.Interval,
            Timeout: c.Timeout,
            ExposedPort: 0,
            Definition: {},
            CreateIndex: c.CreateIndex,
            ModifyIndex: c.ModifyIndex,
          })),
        ],
      });
    }
    return entries;
  }

  /** `GET /v1/agent/checks`: the agent's local view (outputs as the agent last set them). */
  agentChecks(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of this.checks.values()) {
      out[c.CheckID] = { Node: this.options.nodeName, CheckID: c.CheckID, Name: c.Name, Status: c.Status, Notes: c.Notes, Output: c.localOutput, ServiceID: c.ServiceID, ServiceName: c.ServiceName, Type: c.Type, Interval: c.Interval, Timeout: c.Timeout };
    }
    return out;
  }

  /** `GET /v1/agent/services`. */
  agentServices(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of this.services.values()) out[s.ID] = { ID: s.ID, Service: s.Service, Tags: s.Tags, Meta: s.Meta, Port: s.Port, Address: s.Address, Weights: s.Weights, EnableTagOverride: s.EnableTagOverride, Datacenter: 'dc1' };
    return out;
  }

  private planCheck(def: CheckDefinition, serviceId: string, i: number, count: number) {
    const CheckID = def.CheckID || def.ID || (count > 1 ? `service:${serviceId}:${i + 1}` : `service:${serviceId}`);
    if (def.Status !== undefined && def.Status !== '' && !isCheckStatus(def.Status)) {
      throw new StandInHttpError(400, "Status for checks must 'passing', 'warning', 'critical'");
    }
    const ttlMs = duration(def.TTL);
    const intervalMs = duration(def.Interval);
    const timeoutMs = duration(def.Timeout);
    const deregisterMs = duration(def.DeregisterCriticalServiceAfter);
    let type: 'ttl' | 'grpc';
    if (def.GRPC && intervalMs) type = 'grpc';
    else if (def.HTTP || def.TCP || (def.Args && def.Args.length > 0)) {
      throw new StandInHttpError(400, 'the Consul stand-in runs TTL and gRPC checks only (HTTP, TCP and script checks are not implemented)');
    } else if (ttlMs) type = 'ttl';
    else throw new StandInHttpError(400, 'Must provide TTL or ScriptArgs/DockerContainerID/HTTP/TCP/UDP/GRPC/H2PING and Interval');
    if (type === 'grpc' && def.GRPCUseTLS) throw new StandInHttpError(400, 'the Consul stand-in runs gRPC checks without TLS only');
    return {
      CheckID,
      Name: def.Name || `Service '${serviceId}' check`,
      Notes: def.Notes ?? '',
      type,
      interval: intervalMs ? formatGoDuration(intervalMs) : '',
      timeout: type === 'grpc' ? formatGoDuration(timeoutMs ?? 10_000) : '',
      initialStatus: (def.Status && isCheckStatus(def.Status) ? def.Status : 'critical') as CheckStatusValue,
      ...(type === 'ttl' ? { ttlMs } : {}),
      ...(type === 'grpc' ? { grpc: { target: def.GRPC as string, intervalMs: intervalMs as number, timeoutMs: timeoutMs ?? 10_000 } } : {}),
      ...(deregisterMs ? { deregisterAfterMs: Math.max(deregisterMs, this.options.deregisterCriticalMinimumMs) } : {}),
    };
  }

  /** Applies a status/output change the way Consul's agent local state does. */
  private setStatus(check: StandInCheck, status: CheckStatusValue, output: string): void {
    if (check.removed) return;
    check.localOutput = output;
    if (status !== check.Status) {
      check.Status = status;
      check.Output = output;
      if (status === 'critical') check.criticalSince ??= Date.now();
      else delete check.criticalSince;
      if (check.deferTimer) clearTimeout(check.deferTimer);
      delete check.deferTimer;
      this.write(check);
      return;
    }
    if (output === check.Output) return;
    const interval = this.options.checkUpdateIntervalMs;
    if (interval <= 0) {
      check.Output = output;
      this.write(check);
      return;
    }
    if (check.deferTimer) return;
    check.deferTimer = setTimeout(() => {
      delete check.deferTimer;
      if (check.removed || check.Output === check.localOutput) return;
      check.Output = check.localOutput;
      this.write(check);
    }, interval / 2 + Math.random() * interval);
    check.deferTimer.unref();
  }

  private write(check: StandInCheck): void {
    this.index += 1;
    check.ModifyIndex = this.index;
    this.touch(check.ServiceName);
  }

  private touch(serviceName: string): void {
    this.serviceIndex.set(serviceName, this.index);
    for (const waiter of [...this.waiters]) if (waiter.service === serviceName && this.indexOf(serviceName) > waiter.minIndex) waiter.resolve();
  }

  private arm(check: StandInCheck): void {
    if (check.Type === 'ttl') this.armTtl(check);
    if (check.grpc) {
      // Consul staggers the first run of an interval check randomly within one interval.
      this.scheduleGrpc(check, Math.random() * check.grpc.intervalMs);
    }
  }

  private armTtl(check: StandInCheck): void {
    if (check.ttlTimer) clearTimeout(check.ttlTimer);
    if (!check.ttlMs) return;
    check.ttlTimer = setTimeout(() => {
      delete check.ttlTimer;
      const output = check.ttlLastOutput ? `TTL expired (last output before timeout follows): ${check.ttlLastOutput}` : 'TTL expired';
      this.options.logger.info({ checkId: check.CheckID }, 'consul stand-in: check missed TTL, is now critical');
      this.setStatus(check, 'critical', output);
    }, check.ttlMs);
    check.ttlTimer.unref();
  }

  private scheduleGrpc(check: StandInCheck, delayMs: number): void {
    const grpc = check.grpc;
    if (!grpc) return;
    const generation = check.generation;
    check.grpcTimer = setTimeout(async () => {
      delete check.grpcTimer;
      const result = await grpc.probe.check(grpc.timeoutMs);
      if (check.removed || !this.running || check.generation !== generation) return;
      if (result.status !== check.Status) this.options.logger.info({ checkId: check.CheckID, status: result.status, output: result.output }, 'consul stand-in: gRPC check changed');
      this.setStatus(check, result.status, result.output);
      this.scheduleGrpc(check, grpc.intervalMs);
    }, delayMs);
    check.grpcTimer.unref();
  }

  private disarm(check: StandInCheck): void {
    check.generation += 1;
    for (const timer of [check.ttlTimer, check.grpcTimer, check.deferTimer]) if (timer) clearTimeout(timer);
    delete check.ttlTimer;
    delete check.grpcTimer;
    delete check.deferTimer;
  }

  private remove(check: StandInCheck, bump: boolean): void {
    check.removed = true;
    this.disarm(check);
    check.grpc?.probe.close();
    this.checks.delete(check.CheckID);
    if (bump) {
      this.index += 1;
      this.touch(check.ServiceName);
    }
  }

  private reap(): void {
    const now = Date.now();
    for (const check of [...this.checks.values()]) {
      if (check.removed || check.deregisterAfterMs === undefined || check.Status !== 'critical' || check.criticalSince === undefined) continue;
      if (now - check.criticalSince > check.deregisterAfterMs && this.services.has(check.ServiceID)) {
        this.deregisterService(check.ServiceID, 'reaped');
      }
    }
  }
}
