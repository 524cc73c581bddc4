import type { Logger } from '@flotilla/telemetry';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { Catalog } from '../catalog/Catalog.js';
import type { MeshDiscovery } from '../discovery/MeshDiscovery.js';
import type { RelayOrigin } from '../endpoint/ServerMessageRelay.js';
import type { UpstreamSession } from '../endpoint/UpstreamSession.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { noReplica, unknownResource } from '../errors/routingErrors.js';

/** A client session that can be told a resource changed. */
export interface ResourceSubscriber {
  sendResourceUpdated(uri: string): void;
}

interface Subscription {
  readonly uri: string;
  readonly server: string;
  readonly subscribers: Set<ResourceSubscriber>;
  /** The upstream session holding the subscription on one replica, while it works. */
  holder?: UpstreamSession;
  placing?: Promise<void>;
}

/**
 * `resources/subscribe` across the mesh. Clients subscribe to a URI; the router holds ONE upstream
 * subscription per URI, on one replica of the server offering it, and fans that server's
 * `notifications/resources/updated` out to every subscribed client. When the holding session goes away
 * (node left, connection lost), the subscription moves to another replica on the next catalog change.
 */
export class ResourceSubscriptions {
  private readonly byUri = new Map<string, Subscription>();

  constructor(
    private readonly catalog: Catalog,
    private readonly discovery: MeshDiscovery,
    private readonly logger: Logger,
  ) {}

  async subscribe(subscriber: ResourceSubscriber, uri: string): Promise<void> {
    const route = this.catalog.routeResource(uri);
    if (!route) throw unknownResource(uri);
    let sub = this.byUri.get(uri);
    if (!sub) this.byUri.set(uri, (sub = { uri, server: route.server, subscribers: new Set() }));
    sub.subscribers.add(subscriber);
    try {
      await this.ensurePlaced(sub);
    } catch (err) {
      sub.subscribers.delete(subscriber);
      if (sub.subscribers.size === 0 && !sub.holder) this.byUri.delete(uri);
      throw err;
    }
  }

  async unsubscribe(subscriber: ResourceSubscriber, uri: string): Promise<void> {
    const sub = this.byUri.get(uri);
    if (!sub?.subscribers.delete(subscriber)) return;
    if (sub.subscribers.size === 0) await this.drop(sub);
  }

  /** Forgets a client session that closed. */
  removeSubscriber(subscriber: ResourceSubscriber): void {
    for (const sub of [...this.byUri.values()]) {
      if (sub.subscribers.delete(subscriber) && sub.subscribers.size === 0) void this.drop(sub);
    }
  }

  /** A server reported an update of `uri`: tell every subscriber. */
  notifyUpdated(uri: string, origin: RelayOrigin): void {
    const sub = this.byUri.get(uri);
    if (!sub) {
      this.logger.debug({ uri, nodeId: origin.nodeId }, 'resource update nobody subscribes to');
      return;
    }
    for (const s of sub.subscribers) s.sendResourceUpdated(uri);
  }

  /** After the catalog changed: moves subscriptions whose holding session stopped working. */
  refresh(): void {
    for (const sub of this.byUri.values()) {
      if (sub.holder?.connected || sub.placing || sub.subscribers.size === 0) continue;
      sub.holder = undefined;
      this.ensurePlaced(sub).catch((err: unknown) =>
        this.logger.warn({ uri: sub.uri, server: sub.server, err }, 'cannot move a resource subscription to another replica; will retry on the next change'),
      );
    }
  }

  private ensurePlaced(sub: Subscription): Promise<void> {
    if (sub.holder?.connected) return Promise.resolve();
    sub.placing ??= this.place(sub).finally(() => {
      sub.placing = undefined;
    });
    return sub.placing;
  }

  private async place(sub: Subscription): Promise<void> {
    const route = this.catalog.routeResource(sub.uri);
    const replicas = route?.server === sub.server ? route.replicas : [];
    const tried: { nodeId: string; reason: string }[] = [];
    for (const nodeId of replicas) {
      const session = this.discovery.endpoint(nodeId)?.connectedSession(sub.server);
      if (!session) continue;
      if (!session.supportsSubscriptions) {
        throw new JsonRpcError(ErrorCode.MethodNotFound, `Server ${sub.server} does not support resource subscriptions`);
      }
      try {
        await session.subscribe(sub.uri);
        sub.holder = session;
        this.logger.debug({ uri: sub.uri, server: sub.server, nodeId }, 'resource subscription placed');
        return;
      } catch (err) {
        if (err instanceof JsonRpcError) throw err; // the server's own answer (e.g. unknown resource)
        tried.push({ nodeId, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    throw noReplica(sub.uri, tried);
  }

  private async drop(sub: Subscription): Promise<void> {
    if (this.byUri.get(sub.uri) === sub) this.byUri.delete(sub.uri);
    const holder = sub.holder;
    sub.holder = undefined;
    await holder?.unsubscribe(sub.uri);
  }
}
