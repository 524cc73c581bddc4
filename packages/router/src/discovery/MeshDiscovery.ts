import type { RegisteredNode, Registry, RegistryWatch } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';
import type { Catalog } from '../catalog/Catalog.js';
import type { UpstreamNodes } from '../front/ClientSessionServices.js';
import { NodeEndpoint, type NodeEndpointDeps } from '../endpoint/NodeEndpoint.js';
import type { NodeKeyDirectory } from './NodeKeyDirectory.js';
import type { NodeLoadView } from './NodeLoadView.js';
import type { NodeTrust } from './NodeTrust.js';
import { DEFAULT_WATCHDOG_OPTIONS, NodeWatchdog, type NodeWatchdogOptions } from './NodeWatchdog.js';
import type { ReplicaDirectory, ToolBreakerListener } from './ReplicaDirectory.js';
import type { UpstreamSession } from '../upstream/UpstreamSession.js';
import type { PoolClient } from '../upstream/UpstreamSessionPool.js';

/** How long calls already sent to a node that left after draining get to bring their answers home, ms. */
const RETIRE_GRACE_MS = 5000;

/** Whether the registry answers, as last reported by its watch. */
export interface RegistryStatus {
  /** A first snapshot arrived. */
  synced: boolean;
  reachable: boolean;
  error?: string;
}

/** Which records discovery accepts, and where it puts the accepted nodes' keys for the report checks. */
export interface DiscoveryTrust {
  readonly policy: NodeTrust;
  readonly keys: NodeKeyDirectory;
}

/**
 * Discovery: follows the registry's live view and keeps one {@link NodeEndpoint} per live node. A node that
 * joins gets upstream sessions (and enters the catalog as they come up); a node that leaves the view
 * (stale heartbeat, deregistered, killed) is closed at once, failing its in-flight calls; a node id that
 * reappears with a new instance id is a restart and gets fresh sessions. With a load view, a
 * {@link NodeWatchdog} also catches nodes that stop reporting and answering without dropping their
 * connections (paused, wedged), faster than their heartbeats go stale.
 */
export class MeshDiscovery implements ReplicaDirectory, UpstreamNodes {
  private readonly endpoints = new Map<string, NodeEndpoint>();
  /** Nodes that left after draining, still finishing calls (see `NodeEndpoint.retire`). */
  private readonly retiring = new Set<NodeEndpoint>();
  private watch: RegistryWatch | undefined;
  private status: RegistryStatus = { synced: false, reachable: false };
  private readonly watchdog: NodeWatchdog | undefined;
  private readonly toolBreakerListeners = new Set<ToolBreakerListener>();
  /** Node ids of the last snapshot that were refused, with the reason logged (each logged once while it holds). */
  private refused = new Map<string, string>();
  /** Node ids of the last snapshot, so trust verdicts of vanished ids are forgotten. */
  private seen = new Set<string>();

  /**
   * With `trust`, only registry records it accepts become nodes (refusals are logged once per node and
   * reason), and the accepted nodes' keys go to its key directory for the report checks.
   */
  constructor(
    private readonly registry: Registry,
    private readonly deps: NodeEndpointDeps,
    private readonly loadView: NodeLoadView | undefined,
    private readonly logger: Logger,
    watchdogOptions: NodeWatchdogOptions = DEFAULT_WATCHDOG_OPTIONS,
    private readonly trust?: DiscoveryTrust,
  ) {
    if (loadView) this.watchdog = new NodeWatchdog(() => [...this.endpoints.values()], loadView, logger, watchdogOptions);
  }

  /** The catalog the nodes' listings go into. */
  get catalog(): Catalog {
    return this.deps.catalog;
  }

  /** The client's upstream session of `binding`, from this replica's pool (taken up when another replica opened it). */
  session(client: PoolClient, binding: { nodeId: string; instanceId: string; server: string }): UpstreamSession | undefined {
    return this.endpoints.get(binding.nodeId)?.clientSession(client, binding.server, binding.instanceId);
  }

  /** Whether any live replica of `server` asks for sticky affinity (its state is per client session). */
  isSticky(server: string): boolean {
    for (const e of this.endpoints.values()) if (e.isSticky(server)) return true;
    return false;
  }

  isReadOnlyTool(name: string): boolean {
    return this.deps.catalog.tool(name)?.definition.annotations?.readOnlyHint === true;
  }

  onToolBreakerChange(listener: ToolBreakerListener): () => void {
    this.toolBreakerListeners.add(listener);
    return () => this.toolBreakerListeners.delete(listener);
  }

  start(): void {
    this.watchdog?.start();
    this.watch = this.registry.watch((event) => {
      if (event.type === 'snapshot') {
        this.status = { synced: true, reachable: true };
        this.apply(event.nodes);
      } else {
        this.status = { synced: this.status.synced, reachable: event.reachable, ...(event.error ? { error: event.error } : {}) };
        if (event.reachable) this.logger.info({ registry: this.registry.kind }, 'registry reachable');
        else this.logger.warn({ registry: this.registry.kind, error: event.error }, 'registry unreachable; keeping the last view');
      }
    });
  }

  registryStatus(): RegistryStatus {
    return { ...this.status };
  }

  endpoint(nodeId: string): NodeEndpoint | undefined {
    return this.endpoints.get(nodeId);
  }

  listEndpoints(): NodeEndpoint[] {
    return [...this.endpoints.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  /** Stops watching and closes every node (politely ending upstream sessions). */
  async stop(): Promise<void> {
    this.watchdog?.stop();
    await this.watch?.stop();
    this.watch = undefined;
    const all = [...this.endpoints.values(), ...this.retiring];
    this.endpoints.clear();
    this.retiring.clear();
    await Promise.all(all.map((e) => e.close('router stopping', true)));
  }

  /** The snapshot's nodes that the trust policy accepts (all of them without one). */
  private admit(nodes: RegisteredNode[]): RegisteredNode[] {
    const trust = this.trust;
    if (!trust) return nodes;
    const seen = new Set<string>();
    const refused = new Map<string, string>();
    const accepted: RegisteredNode[] = [];
    for (const node of nodes) {
      const id = node.record.nodeId;
      seen.add(id);
      const verdict = trust.policy.check(node);
      if (verdict.ok) {
        trust.keys.set(id, verdict.nodeKey);
        accepted.push(node);
        continue;
      }
      refused.set(id, verdict.reason);
      if (this.refused.get(id) !== verdict.reason) this.logger.warn({ nodeId: id, mcpBaseUrl: node.record.mcpBaseUrl, reason: verdict.reason }, 'registry record refused: node not joined');
    }
    for (const id of this.seen) if (!seen.has(id)) trust.policy.forget(id);
    trust.keys.retain(new Set(accepted.map((n) => n.record.nodeId)));
    this.seen = seen;
    this.refused = refused;
    return accepted;
  }

  private apply(snapshot: RegisteredNode[]): void {
    const nodes = this.admit(snapshot);
    const live = new Set<string>();
    for (const node of nodes) {
      const id = node.record.nodeId;
      live.add(id);
      const current = this.endpoints.get(id);
      if (!current) {
        this.join(node);
      } else if (current.record.instanceId !== node.record.instanceId || current.record.mcpBaseUrl !== node.record.mcpBaseUrl) {
        this.leave(current, 'was replaced by a new instance');
        this.join(node);
      } else {
        const wasDraining = current.draining;
        current.update(node);
        if (current.draining && !wasDraining) this.logger.info({ nodeId: id }, 'node draining: no new calls go there');
      }
    }
    for (const endpoint of [...this.endpoints.values()]) {
      if (!live.has(endpoint.nodeId)) this.leave(endpoint, 'left the registry view');
    }
  }

  private join(node: RegisteredNode): void {
    const { nodeId, mcpBaseUrl, servers } = node.record;
    this.logger.info({ nodeId, mcpBaseUrl, servers: servers.map((s) => s.name) }, 'node joined');
    this.endpoints.set(
      nodeId,
      new NodeEndpoint(node, {
        ...this.deps,
        ...(this.loadView ? { loadView: this.loadView } : {}),
        onToolBreakerChange: (id, tool, to) => {
          this.deps.onToolBreakerChange?.(id, tool, to);
          for (const listener of this.toolBreakerListeners) listener(id, tool, to);
        },
      }),
    );
  }

  private leave(endpoint: NodeEndpoint, reason: string): void {
    if (this.endpoints.get(endpoint.nodeId) === endpoint) this.endpoints.delete(endpoint.nodeId);
    this.loadView?.forget(endpoint.nodeId);
    if (endpoint.draining) {
      // A drained node deregisters right after its last answer: let the answers on the wire arrive.
      this.logger.info({ nodeId: endpoint.nodeId, inflight: endpoint.outstanding }, `node ${reason} after draining`);
      this.retiring.add(endpoint);
      void endpoint.retire(reason, RETIRE_GRACE_MS).finally(() => this.retiring.delete(endpoint));
    } else {
      this.logger.warn({ nodeId: endpoint.nodeId, inflight: endpoint.outstanding }, `node ${reason}`);
      void endpoint.close(reason);
    }
  }
}
