import type { NodeRecord, PingData } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import {
  DEFAULT_REGISTRY_TIMINGS,
  NodeIdCollisionError,
  NodeNotRegisteredError,
  RegistryAuthError,
  RegistryConfigError,
  type RegisteredNode,
  type Registry,
  type RegistryTimings,
  type RegistryWatch,
  type RegistryWatchEvent,
} from '../Registry.js';
import { ConsulEntryReader } from './consulEntries.js';
import { pingToCheckStatus, worstHealth } from './consulHealth.js';
import { ConsulHealthWatch } from './ConsulHealthWatch.js';
import { ConsulHttpApi } from './ConsulHttpApi.js';
import { ConsulRequestError } from './ConsulRequestError.js';
import { ConsulServiceEntrySchema } from './consulSchemas.js';
import { buildServiceDefinition, pingCheckId, type ConsulCheckSettings } from './consulServiceDefinition.js';
import { DEFAULT_CONSUL_SERVICE_NAME, parseConsulAddress, type ConsulSettings } from './ConsulSettings.js';
import { RECORD_META, decodeRecordMeta } from './recordMeta.js';

/** Options of {@link ConsulRegistry}. */
export interface ConsulRegistryOptions {
  logger: Logger;
  /** Consul HTTP address: `host:port` or an http(s) URL (what `CONSUL_HTTP_ADDR` holds). Default `127.0.0.1:8500`. */
  address?: string;
  /** ACL token (what `CONSUL_HTTP_TOKEN` holds). */
  token?: string;
  /** Service name agents register under; default `flotilla-agent`. */
  serviceName?: string;
  /** Heartbeat interval and staleness; the ping check's TTL is `staleAfterMs`. */
  timings?: Partial<RegistryTimings>;
  /** Interval of Consul's gRPC health check, ms (default 5000). */
  grpcCheckIntervalMs?: number;
  /** Timeout of one gRPC health check, ms (default 2000). */
  grpcCheckTimeoutMs?: number;
  /** `DeregisterCriticalServiceAfter` of the ping check, ms (default 60000; Consul enforces at least 1 minute). */
  deregisterCriticalAfterMs?: number;
  /** Timeout of non-blocking requests, ms (default 5000). */
  requestTimeoutMs?: number;
  /** `wait` of the watch's blocking queries, ms (default 30000). */
  watchWaitMs?: number;
  /** Upper bound of the watch's retry backoff while Consul is unreachable, ms (default 5000). */
  watchMaxBackoffMs?: number;
  /** Least time between two watch queries, ms (default 100). */
  watchMinIntervalMs?: number;
}

/**
 * Registry backend on Consul (HTTP API of Consul 1.15 and later). Each agent is a service instance of
 * `flotilla-agent` (ID = node id) on its local Consul agent, carrying its record in service meta, with a
 * TTL "ping" check that every heartbeat updates with the ping data as output, and a gRPC check that Consul
 * runs against the agent's grpc.health.v1 service. Routers follow the service with blocking queries.
 * See docs/registry.md for the encoding, the health mapping and the watch semantics.
 */
export class ConsulRegistry implements Registry {
  readonly kind = 'consul';
  readonly serviceName: string;
  private readonly api: ConsulHttpApi;
  private readonly timings: RegistryTimings;
  private readonly checks: ConsulCheckSettings;
  private readonly reader: ConsulEntryReader;
  private readonly watches = new Set<ConsulHealthWatch>();
  private readonly settings: ConsulSettings;

  constructor(private readonly options: ConsulRegistryOptions) {
    this.serviceName = options.serviceName ?? DEFAULT_CONSUL_SERVICE_NAME;
    this.settings = {
      baseUrl: parseConsulAddress(options.address ?? '127.0.0.1:8500'),
      serviceName: this.serviceName,
      ...(options.token ? { token: options.token } : {}),
    };
    this.timings = { ...DEFAULT_REGISTRY_TIMINGS, ...options.timings };
    this.checks = {
      ttlMs: this.timings.staleAfterMs,
      grpcIntervalMs: options.grpcCheckIntervalMs ?? 5000,
      grpcTimeoutMs: options.grpcCheckTimeoutMs ?? 2000,
      deregisterCriticalAfterMs: options.deregisterCriticalAfterMs ?? 60_000,
    };
    this.api = new ConsulHttpApi(this.settings, { requestTimeoutMs: options.requestTimeoutMs ?? 5000 });
    this.reader = new ConsulEntryReader(options.logger);
  }

  /** Consul HTTP API base URL in use. */
  get baseUrl(): string {
    return this.settings.baseUrl;
  }

  async register(record: NodeRecord): Promise<void> {
    await this.refuseCollision(record);
    const definition = buildServiceDefinition(record, this.serviceName, this.checks);
    try {
      await this.api.registerService(definition);
    } catch (err) {
      if (err instanceof ConsulRequestError && err.kind === 'rejected') {
        throw new RegistryConfigError(`Consul rejected the registration of node "${record.nodeId}": ${err.detail}`, { cause: err });
      }
      throw this.registryError(err, 'write');
    }
  }

  async heartbeat(record: NodeRecord, ping: PingData): Promise<void> {
    try {
      await this.api.updateTtlCheck(pingCheckId(record), pingToCheckStatus(ping), JSON.stringify(ping));
    } catch (err) {
      // 404 "Unknown check ID" (Consul 1.11+), or 500 "does not have associated TTL" (older agents): the
      // agent lost the service (restart without state, reaping, another process replaced it).
      if (err instanceof ConsulRequestError && (err.kind === 'not-found' || /does not have associated TTL|unknown check/i.test(err.detail))) {
        throw new NodeNotRegisteredError(record.nodeId);
      }
      throw this.registryError(err, 'write');
    }
  }

  async deregister(nodeId: string): Promise<void> {
    try {
      await this.api.deregisterService(nodeId);
    } catch (err) {
      throw this.registryError(err, 'write');
    }
  }

  async list(options: { includeCritical?: boolean } = {}): Promise<RegisteredNode[]> {
    let entries: unknown[];
    try {
      entries = await this.api.listHealthEntries(this.serviceName);
    } catch (err) {
      throw this.registryError(err, 'read');
    }
    const nodes = this.reader.read(entries);
    return options.includeCritical ? nodes : nodes.filter((n) => n.health !== 'critical');
  }

  watch(listener: (event: RegistryWatchEvent) => void): RegistryWatch {
    const watch = new ConsulHealthWatch(
      this.api,
      new ConsulEntryReader(this.options.logger),
      {
        serviceName: this.serviceName,
        waitMs: this.options.watchWaitMs ?? 30_000,
        minIntervalMs: this.options.watchMinIntervalMs ?? 100,
        initialBackoffMs: 250,
        maxBackoffMs: this.options.watchMaxBackoffMs ?? 5000,
        describeError: (err) => this.registryError(err, 'read').message,
      },
      listener,
      this.options.logger,
    );
    this.watches.add(watch);
    return {
      stop: async () => {
        this.watches.delete(watch);
        await watch.stop();
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.stop()));
    this.watches.clear();
    await this.api.close();
  }

  /**
   * Refuses to take a node id that a live instance of another agent process holds anywhere in the
   * datacenter. An instance whose checks are all critical (a crashed agent not yet reaped) may be replaced.
   */
  private async refuseCollision(record: NodeRecord): Promise<void> {
    let entries: unknown[];
    try {
      entries = await this.api.listHealthEntries(this.serviceName);
    } catch (err) {
      throw this.registryError(err, 'read');
    }
    for (const raw of entries) {
      const entry = ConsulServiceEntrySchema.safeParse(raw);
      if (!entry.success || entry.data.Service.ID !== record.nodeId) continue;
      const health = worstHealth(entry.data.Checks ?? []);
      if (health === 'critical') continue;
      const decoded = decodeRecordMeta(entry.data.Service.Meta);
      const holder = decoded.ok ? decoded.record.instanceId : entry.data.Service.Meta?.[RECORD_META.instanceId];
      if (holder === record.instanceId) continue;
      const where = decoded.ok ? ` at ${decoded.record.mcpBaseUrl}` : '';
      throw new NodeIdCollisionError(
        record.nodeId,
        `${holder ? `instance ${holder}` : 'a service without a Flotilla record'}${where} on Consul node ${entry.data.Node.Node}, ${health}`,
      );
    }
  }

  /** Maps a Consul failure to the error the Registry contract promises, naming what to fix where possible. */
  private registryError(err: unknown, access: 'read' | 'write'): Error {
    if (err instanceof ConsulRequestError && err.kind === 'forbidden') {
      const needs = access === 'write' ? `service:write on "${this.serviceName}"` : `service:read on "${this.serviceName}" and node:read`;
      const token = this.settings.token
        ? `the token in CONSUL_HTTP_TOKEN is unknown to Consul or lacks ${needs}`
        : `no token is set: set CONSUL_HTTP_TOKEN to a token with ${needs}`;
      return new RegistryAuthError(`Consul at ${this.settings.baseUrl} refused to ${err.operation} (HTTP 403: ${err.detail}); ${token}`);
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}
