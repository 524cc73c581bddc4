import type { Logger } from '@flotilla/telemetry';
import type { Catalog } from '../catalog/Catalog.js';
import type { ProfileListings } from '../catalog/ProfileListings.js';
import type { CallForwarder } from '../forwarding/CallForwarder.js';
import type { CallObserver } from '../forwarding/CallObserver.js';
import type { UpstreamSessionPool } from '../upstream/UpstreamSessionPool.js';
import type { ToolArgumentValidator } from './ToolArgumentValidator.js';

/** Where a server runs, as client sessions need to know it. */
export interface ServerPlacementSource {
  /** Whether `server` keeps per-session state and asked for sticky affinity. */
  isSticky(server: string): boolean;
}

/** What every client session shares. */
export interface ClientSessionServices {
  readonly catalog: Catalog;
  readonly forwarder: CallForwarder;
  readonly validator: ToolArgumentValidator;
  readonly profiles: ProfileListings;
  readonly pool: UpstreamSessionPool;
  readonly servers: ServerPlacementSource;
  readonly logger: Logger;
  /** How long a request relayed to the client (sampling, elicitation, roots) may take, ms. */
  readonly clientRequestTimeoutMs: number;
  /** Hears tool calls refused before dispatch (metrics). */
  readonly observer?: CallObserver;
}
