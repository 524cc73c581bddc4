import type { Logger } from '@flotilla/telemetry';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamPeer } from '../upstream/UpstreamPeer.js';
import type { Catalog } from './Catalog.js';
import type { ServerListing } from './ServerListing.js';

/** A replica that can show what a server offers a client with given capabilities. */
export interface ListingSource {
  readonly nodeId: string;
  listingFor(server: string, peer: UpstreamPeer): Promise<ServerListing>;
}

/** What {@link ProfileListings} needs. */
export interface ProfileListingsDeps {
  readonly catalog: Catalog;
  /** The replica (if any still works) that can read `server` for a profile. */
  source(nodeId: string): ListingSource | undefined;
  readonly logger: Logger;
  /** Most listings kept (server × capability profile); the least recently used go first. */
  readonly maxEntries?: number;
}

interface Entry {
  readonly version: number;
  readonly listing: Promise<ServerListing>;
}

const DEFAULT_MAX_ENTRIES = 512;

/** The key of a capability profile: the capabilities and protocol version, with keys sorted. */
export function profileKey(capabilities: ClientCapabilities, protocolVersion: string): string {
  return `${protocolVersion}\n${stableJson(capabilities)}`;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * What each server shows clients of one capability profile before they have a session of their own with
 * it. Servers hide tools from clients that lack what the tools need (sampling, elicitation, roots), so a
 * client's catalog must come from a session that declares that client's capabilities; clients with the
 * same capabilities see the same lists, so one read (on a throwaway session on one replica) serves them
 * all, until the server's listings change. Bounded, least recently used first out.
 */
export class ProfileListings {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;

  constructor(private readonly deps: ProfileListingsDeps) {
    this.maxEntries = deps.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /** What `server` shows a client speaking as `peer` (whose profile is `key`). */
  get(server: string, key: string, peer: UpstreamPeer): Promise<ServerListing> {
    const id = `${server}\n${key}`;
    const version = this.deps.catalog.serverVersion(server);
    const known = this.entries.get(id);
    if (known && known.version === version) {
      // Least recently used first out: a hit moves to the end.
      this.entries.delete(id);
      this.entries.set(id, known);
      return known.listing;
    }
    const read = this.read(server, peer);
    const listing = read.then((r) => r.listing);
    this.entries.set(id, { version, listing });
    // A failed read, or the catalog's stand-in for one, is not kept: the next client asks again.
    const forget = (): void => {
      if (this.entries.get(id)?.listing === listing) this.entries.delete(id);
    };
    read.then((r) => (r.exact ? undefined : forget()), forget);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return listing;
  }

  /** Reads on the first replica that answers; with none, what the catalog has (read with the router's own capabilities). */
  private async read(server: string, peer: UpstreamPeer): Promise<{ listing: ServerListing; exact: boolean }> {
    const replicas = this.deps.catalog.listServers().find((s) => s.name === server)?.replicas ?? [];
    for (const nodeId of replicas) {
      const source = this.deps.source(nodeId);
      if (!source) continue;
      try {
        return { listing: await source.listingFor(server, peer), exact: true };
      } catch (err) {
        this.deps.logger.warn({ server, nodeId, err }, 'cannot read what a server shows a client profile; trying another replica');
      }
    }
    const fallback = this.deps.catalog.serverListing(server);
    if (!fallback) throw new Error(`no replica of ${server} answers`);
    return { listing: fallback, exact: false };
  }
}
