import type { Logger } from '@flotilla/telemetry';
import type { SessionGuards } from '../auth/SessionGuards.js';
import type { Catalog } from '../catalog/Catalog.js';
import type { ProfileListings } from '../catalog/ProfileListings.js';
import type { CallForwarder } from '../forwarding/CallForwarder.js';
import type { CallObserver } from '../forwarding/CallObserver.js';
import type { ClientBoundMessage, StreamHolder } from '../sessions/ReplicaBus.js';
import type { UpstreamBinding } from '../sessions/SessionRecord.js';
import type { SessionStore } from '../sessions/SessionStore.js';
import type { SessionTokens } from '../sessions/SessionTokens.js';
import type { UpstreamSession } from '../upstream/UpstreamSession.js';
import type { PoolClient, UpstreamSessionPool } from '../upstream/UpstreamSessionPool.js';
import type { ClientResponse } from './mcp/OutboundRequests.js';
import type { OffLoopArgumentValidator } from './validation/OffLoopArgumentValidator.js';
import type { ToolSchemaGuard } from '../upstream/ToolSchemaGuard.js';

/** Where a server runs, as client sessions need to know it. */
export interface ServerPlacementSource {
  /** Whether `server` keeps per-session state and asked for sticky affinity. */
  isSticky(server: string): boolean;
}

/** What every client session shares. */
export interface ClientSessionServices {
  readonly catalog: Catalog;
  readonly forwarder: CallForwarder;
  /** Checks arguments against input schemas off the event loop, within a time budget. */
  readonly validator: OffLoopArgumentValidator;
  /** Tools refused for definitions beyond the router's bounds, and why. */
  readonly toolSchemas: ToolSchemaGuard;
  readonly profiles: ProfileListings;
  readonly pool: UpstreamSessionPool;
  readonly servers: ServerPlacementSource;
  readonly logger: Logger;
  /** How long a request relayed to the client (sampling, elicitation, roots) may take, ms. */
  readonly clientRequestTimeoutMs: number;
  /** Hears tool calls refused before dispatch (metrics). */
  readonly observer?: CallObserver;
  /** Seals session ids and resume tickets with the mesh's session key. */
  readonly tokens: SessionTokens;
  /** This router replica's tag (the prefix of the ids of its requests to clients). */
  readonly replicaTag: string;
  /** How long a dropped client connection may take to resume before its calls are cancelled, ms. */
  readonly reconnectGraceMs: number;
  /** Other router replicas serving the same sessions. */
  readonly replicas: ReplicaLinks;
  /** Where sessions' shared state lives. */
  readonly store: SessionStore;
  /** How often a session in use touches its shared record (so it does not expire), ms. */
  readonly touchEveryMs: number;
  /** The nodes of the mesh, for using a client's upstream sessions that other replicas opened. */
  readonly upstreamNodes: UpstreamNodes;
  /** Access policy and limits every session's requests pass through (front door); none when absent. */
  readonly guards?: SessionGuards;
}

/** How one replica reaches the others (NATS; see `ReplicaBus`). */
export interface ReplicaLinks extends ReplicaPeers {
  /** This replica holds the client stream of session `sid`; returns the release. */
  hold(sid: string, holder: StreamHolder): () => void;
  push(sid: string, message: ClientBoundMessage): void;
  ask(sid: string, request: ClientBoundMessage, timeoutMs: number): Promise<Record<string, unknown>>;
  handOff(sid: string, binding: Omit<UpstreamBinding, 'holder'>): Promise<void>;
}

/** The mesh's nodes as a client session needs them to use its upstream sessions. */
export interface UpstreamNodes {
  /** The client's upstream session of `binding`, taken into this replica's pool; undefined when that node instance is gone. */
  session(client: PoolClient, binding: Pick<UpstreamBinding, 'nodeId' | 'instanceId' | 'server'>): UpstreamSession | undefined;
}

/** How a replica hands other replicas what a client sent it for them. */
export interface ReplicaPeers {
  /** A client answer to a request replica `replica` sent it. */
  forwardResponse(sid: string, replica: string, response: ClientResponse): void;
  /** A cancellation of a client request not running here. */
  forwardCancel(sid: string, requestId: string | number, reason: string | undefined): void;
}
