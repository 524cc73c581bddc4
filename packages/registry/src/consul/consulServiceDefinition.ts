import { createHash } from 'node:crypto';
import type { NodeRecord } from '@flotilla/protocol';
import { formatConsulDuration } from './consulDuration.js';
import { encodeRecordMeta } from './recordMeta.js';

/** Check settings of the service definition. */
export interface ConsulCheckSettings {
  /** TTL of the ping check: a node that does not heartbeat within it turns critical, ms. */
  ttlMs: number;
  /** How often Consul runs the gRPC health check, ms. */
  grpcIntervalMs: number;
  /** Timeout of one gRPC health check, ms. */
  grpcTimeoutMs: number;
  /** Consul reaps the service after its ping check has been critical this long, ms (Consul's minimum is 1 minute). */
  deregisterCriticalAfterMs: number;
}

/** A check inside `PUT /v1/agent/service/register`, in Consul's documented PascalCase shape. */
export interface ConsulCheckDefinition {
  CheckID: string;
  Name: string;
  Notes?: string;
  TTL?: string;
  GRPC?: string;
  GRPCUseTLS?: boolean;
  Interval?: string;
  Timeout?: string;
  Status?: 'passing' | 'warning' | 'critical';
  DeregisterCriticalServiceAfter?: string;
}

/** Body of `PUT /v1/agent/service/register`. */
export interface ConsulServiceDefinition {
  ID: string;
  Name: string;
  Tags: string[];
  Address: string;
  Port: number;
  Meta: Record<string, string>;
  Checks: ConsulCheckDefinition[];
}

/** Prefix of the TTL ("ping") check ids; readers find a node's ping data in the check that starts with it. */
export const PING_CHECK_PREFIX = 'flotilla-ping:';
/** Prefix of the gRPC health check ids. */
export const GRPC_CHECK_PREFIX = 'flotilla-grpc:';

/**
 * Short, stable tag of an agent process. Check ids carry it so that when another process re-registers the
 * same node id on the same Consul agent (which replaces the checks), the old process's heartbeats hit an
 * unknown check, it re-registers, and the collision check stops it.
 */
export function instanceTag(instanceId: string): string {
  return createHash('sha256').update(instanceId).digest('hex').slice(0, 12);
}

/** Id of the TTL check a node's heartbeats update. */
export function pingCheckId(record: Pick<NodeRecord, 'nodeId' | 'instanceId'>): string {
  return `${PING_CHECK_PREFIX}${record.nodeId}:${instanceTag(record.instanceId)}`;
}

/** Id of the gRPC health check of a node. */
export function grpcCheckId(record: Pick<NodeRecord, 'nodeId' | 'instanceId'>): string {
  return `${GRPC_CHECK_PREFIX}${record.nodeId}:${instanceTag(record.instanceId)}`;
}

/** Address and port Consul advertises for the service: the agent's MCP endpoint. */
export function serviceAddressOf(mcpBaseUrl: string): { Address: string; Port: number } {
  const url = new URL(mcpBaseUrl);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  // URL keeps IPv6 literals bracketed; Consul wants the bare address.
  return { Address: url.hostname.replace(/^\[(.*)\]$/, '$1'), Port: port };
}

/**
 * The service definition of a node: ID = node id, Address/Port of its MCP endpoint, Tags = hosted server
 * names, Meta = the record (see `recordMeta.ts`), a TTL ping check (with `DeregisterCriticalServiceAfter`)
 * and, when the node runs one, a gRPC check on its grpc.health.v1 service.
 *
 * The ping check starts critical (Consul's default) so a node is live only once it has sent a ping; its
 * first ping is then a status change, which Consul writes to the catalog at once with the ping as output.
 * The gRPC check starts passing, since an agent registers only after its health server listens; Consul
 * corrects it on its first run. Only the ping check reaps the service: an agent that keeps heartbeating
 * while its gRPC health says NOT_SERVING stays registered (critical) instead of flapping in and out.
 */
export function buildServiceDefinition(record: NodeRecord, serviceName: string, checks: ConsulCheckSettings): ConsulServiceDefinition {
  const definitionChecks: ConsulCheckDefinition[] = [
    {
      CheckID: pingCheckId(record),
      Name: 'Flotilla agent ping',
      Notes: 'TTL check the agent updates on every heartbeat; its output is the ping data as JSON.',
      TTL: formatConsulDuration(checks.ttlMs),
      DeregisterCriticalServiceAfter: formatConsulDuration(checks.deregisterCriticalAfterMs),
    },
  ];
  if (record.healthAddress) {
    definitionChecks.push({
      CheckID: grpcCheckId(record),
      Name: 'Flotilla agent gRPC health',
      Notes: 'grpc.health.v1 Check of the whole agent (empty service name).',
      GRPC: record.healthAddress,
      GRPCUseTLS: false,
      Interval: formatConsulDuration(checks.grpcIntervalMs),
      Timeout: formatConsulDuration(checks.grpcTimeoutMs),
      Status: 'passing',
    });
  }
  return {
    ID: record.nodeId,
    Name: serviceName,
    Tags: record.servers.map((s) => s.name),
    ...serviceAddressOf(record.mcpBaseUrl),
    Meta: encodeRecordMeta(record),
    Checks: definitionChecks,
  };
}
