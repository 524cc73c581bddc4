import type { ClientCallContext } from '../forwarding/ClientCallContext.js';
import type { SessionContext } from './SessionContext.js';
import type { NodeBinding } from './SessionState.js';
import { routeResource } from './routeResource.js';

/** Tries to place a moved subscription again (backoff 0.5, 1, 2, 4 s between them: about 8 s in all). */
const MOVE_ATTEMPTS = 5;
const MOVE_BACKOFF_MS = 500;

/**
 * One client's resource subscriptions across the mesh. Each is held on the client's own upstream session
 * on one node (the one its sticky binding names, or where it already has a session with the server, or
 * the balancer's pick), so the server's `notifications/resources/updated` for it reach this client only.
 * Unsubscribing goes to the node holding it. When that session is lost, the subscription is placed again
 * on another replica.
 */
export class ClientSubscriptions {
  /** Subscriptions being placed again after their session was lost; unsubscribing stops the attempts. */
  private readonly moving = new Set<string>();
  /** The client's own subscribes still in flight, by resource. */
  private readonly subscribing = new Map<string, Promise<unknown>>();
  /** The session closed here (its upstream sessions close with it). */
  private stopped = false;

  constructor(private readonly session: SessionContext) {}

  /** The client's own subscribe; it supersedes a move of the same subscription still in progress. */
  subscribe(uri: string, client: ClientCallContext): Promise<Record<string, unknown>> {
    this.moving.delete(uri);
    const subscribed = this.hold(uri, client, (held) => this.session.state.setSubscription(uri, held));
    this.subscribing.set(uri, subscribed);
    const done = (): void => {
      if (this.subscribing.get(uri) === subscribed) this.subscribing.delete(uri);
    };
    subscribed.then(done, done);
    return subscribed;
  }

  /** Subscribes on one replica; `onHeld` hears where, once that node has answered. */
  private async hold(uri: string, client: ClientCallContext, onHeld: (held: NodeBinding) => void): Promise<Record<string, unknown>> {
    const route = await routeResource(this.session, uri);
    return this.session.services.forwarder.forward({
      target: uri,
      server: route.server,
      replicas: route.replicas,
      request: { method: 'resources/subscribe', params: { uri } },
      retryAfterAcceptance: true,
      client,
      placement: this.session.statePlacementFor(route.server),
      onAnswered: (nodeId) => onHeld({ nodeId, server: route.server }),
    });
  }

  async unsubscribe(uri: string, client: ClientCallContext): Promise<Record<string, unknown>> {
    this.moving.delete(uri);
    const held = this.session.state.subscription(uri);
    if (!held) return {};
    this.session.state.setSubscription(uri, undefined);
    await this.release(uri, held, client);
    return {};
  }

  /** Ends the subscription to `uri` held at `held` (a node that is gone took it with it). */
  private async release(uri: string, held: NodeBinding, client: ClientCallContext): Promise<void> {
    try {
      await this.session.services.forwarder.forward({
        target: uri,
        server: held.server,
        replicas: [held.nodeId],
        request: { method: 'resources/unsubscribe', params: { uri } },
        retryAfterAcceptance: true,
        client,
        placement: { kind: 'pinned', nodeId: held.nodeId, what: `the subscription to ${uri}` },
      });
    } catch (err) {
      // A subscription on a node that is gone is gone with it; the client's unsubscribe succeeded.
      this.session.logger.debug({ uri, nodeId: held.nodeId, err }, 'could not unsubscribe upstream');
    }
  }

  /** The client's session to `server` on `nodeId` was lost: its subscriptions there are placed again. */
  moveFrom(nodeId: string, server: string): void {
    for (const [uri, held] of this.session.state.subscriptions()) {
      if (held.nodeId !== nodeId || held.server !== server) continue;
      this.session.state.setSubscription(uri, undefined);
      this.moving.add(uri);
      this.placeAgain(uri, nodeId, 1);
    }
  }

  /** The session closed here: no more attempts to place moved subscriptions. */
  stop(): void {
    this.stopped = true;
    this.moving.clear();
  }

  /** One try to hold a moved subscription elsewhere; a failed try is repeated after a backoff (the mesh may be mid-change). */
  private placeAgain(uri: string, from: string, attempt: number): void {
    const context = this.session.backgroundContext(`resubscribe ${uri}`);
    // Held where the client no longer wants it: it unsubscribed (or subscribed anew) while this try ran.
    let unwanted: NodeBinding | undefined;
    const onHeld = (held: NodeBinding): void => {
      if (this.moving.has(uri)) this.session.state.setSubscription(uri, held);
      else unwanted = held;
    };
    this.hold(uri, context, onHeld).then(
      () => {
        if (unwanted) return this.dropUnwanted(uri, unwanted, context);
        this.moving.delete(uri);
        this.session.logger.info({ uri, from, to: this.session.state.subscription(uri)?.nodeId, attempt }, 'resource subscription moved');
      },
      (err: unknown) => {
        if (!this.moving.has(uri)) return;
        if (attempt >= MOVE_ATTEMPTS) {
          this.moving.delete(uri);
          this.session.logger.warn({ uri, nodeId: from, err, attempts: attempt }, 'cannot place a resource subscription again; the client gets no updates for it');
          return;
        }
        this.session.logger.info({ uri, nodeId: from, err, attempt }, 'could not place a resource subscription again yet; retrying');
        setTimeout(() => this.moving.has(uri) && this.placeAgain(uri, from, attempt + 1), MOVE_BACKOFF_MS * 2 ** (attempt - 1)).unref();
      },
    );
  }

  /**
   * A move placed the subscription after the client had unsubscribed: it is ended again on that node, so
   * the client gets no updates it no longer asked for. Not when the client has subscribed anew on the same
   * node (one subscription per session and resource there), nor once the session has closed.
   */
  private async dropUnwanted(uri: string, held: NodeBinding, context: ClientCallContext): Promise<void> {
    // A subscribe of the client's own still in flight may land on the same node: where it lands decides.
    await this.subscribing.get(uri)?.catch(() => undefined);
    const now = this.session.state.subscription(uri);
    if (this.stopped || (now?.nodeId === held.nodeId && now.server === held.server)) return;
    this.session.logger.info({ uri, nodeId: held.nodeId }, 'a moved resource subscription was placed after the client unsubscribed; ending it there');
    return this.release(uri, held, context);
  }
}
