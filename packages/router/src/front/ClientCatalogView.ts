import { namespacedName } from '@flotilla/protocol';
import type { Prompt, Resource, ResourceTemplate, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Grants } from '../auth/AccessPolicy.js';
import type { Catalog } from '../catalog/Catalog.js';
import type { PromptEntry, ToolEntry } from '../catalog/CatalogEntries.js';
import type { ProfileListings } from '../catalog/ProfileListings.js';
import type { ServerListing } from '../catalog/ServerListing.js';
import { readPrompts, readResourceTemplates, readResources, readTools } from '../upstream/readListing.js';
import type { UpstreamPeer } from '../upstream/UpstreamPeer.js';
import type { ListKind, UpstreamSession } from '../upstream/UpstreamSession.js';

/** A tool as one client sees it (the definition it is shown), with where it runs. */
export type ViewTool = ToolEntry;

/** A prompt as one client sees it. */
export type ViewPrompt = PromptEntry;

/** A resource (or template) as one client sees it, with the server it comes from. */
export interface ViewResource<D> {
  readonly server: string;
  readonly definition: D;
}

/** What a {@link ClientCatalogView} needs. */
export interface ClientCatalogViewDeps {
  readonly catalog: Catalog;
  readonly profiles: ProfileListings;
  /** The client, as the peer its profile's listings are read for. */
  readonly peer: UpstreamPeer;
  readonly profileKey: string;
  /** The client's own open session to `server` that its lists should come from, if it has one. */
  ownSession(server: string): UpstreamSession | undefined;
  /** What the client may use (front door access policy); lists show only that. Everything when absent. */
  grants?(): Grants | undefined;
}

type Lists = Pick<ServerListing, 'tools' | 'resources' | 'resourceTemplates' | 'prompts'>;

/**
 * The catalog as one client sees it: for each server in the mesh, what that server shows this client.
 * Where the client has a session of its own with the server, the lists come from that session (they may
 * hold session state: resources it created, tools it enabled), cached while the server promises to say
 * when they change (`listChanged`); elsewhere from what the server shows clients with the same
 * capabilities ({@link ProfileListings}). Names are namespaced as in the mesh catalog, and calls route to
 * the replicas the mesh catalog has for them.
 */
export class ClientCatalogView {
  /** Lists read on the client's own sessions, by session, while their server promises list_changed. */
  private readonly ownLists = new WeakMap<UpstreamSession, Map<keyof Lists, Promise<unknown[]>>>();

  constructor(private readonly deps: ClientCatalogViewDeps) {}

  /** The server said (on `session`) that one of its lists changed. */
  invalidate(session: UpstreamSession, list: ListKind): void {
    const cached = this.ownLists.get(session);
    if (!cached) return;
    if (list === 'resources') {
      cached.delete('resources');
      cached.delete('resourceTemplates');
    } else cached.delete(list);
  }

  async tools(): Promise<ViewTool[]> {
    const { catalog } = this.deps;
    const grants = this.deps.grants?.();
    const out = new Map<string, ViewTool>();
    for (const [server, tools] of await this.each('tools')) {
      for (const tool of tools as Tool[]) {
        const name = namespacedName(server, tool.name);
        if (out.has(name) || (grants && !grants.allows('tool', server, name))) continue;
        const annotations = tool.annotations;
        out.set(name, {
          name,
          server,
          upstreamName: tool.name,
          definition: { ...tool, name },
          replicas: catalog.tool(name)?.replicas ?? this.replicasOf(server),
          retryableAfterAcceptance: annotations?.readOnlyHint === true || annotations?.idempotentHint === true,
        });
      }
    }
    return sortedValues(out);
  }

  /**
   * The tool `name` for a call: the mesh catalog's entry when it has one (it holds every tool some client
   * may be shown, and the server decides on the client's own session), else this client's own view.
   */
  async tool(name: string): Promise<ViewTool | undefined> {
    return this.deps.catalog.tool(name) ?? (await this.tools()).find((t) => t.name === name);
  }

  /** The prompt `name`, looked up like {@link tool}. */
  async prompt(name: string): Promise<ViewPrompt | undefined> {
    return this.deps.catalog.prompt(name) ?? (await this.prompts()).find((p) => p.name === name);
  }

  async prompts(): Promise<ViewPrompt[]> {
    const { catalog } = this.deps;
    const grants = this.deps.grants?.();
    const out = new Map<string, ViewPrompt>();
    for (const [server, prompts] of await this.each('prompts')) {
      for (const prompt of prompts as Prompt[]) {
        const name = namespacedName(server, prompt.name);
        if (out.has(name) || (grants && !grants.allows('prompt', server, name))) continue;
        out.set(name, { name, server, upstreamName: prompt.name, definition: { ...prompt, name }, replicas: catalog.prompt(name)?.replicas ?? this.replicasOf(server) });
      }
    }
    return sortedValues(out);
  }

  async resources(): Promise<Array<ViewResource<Resource>>> {
    const out = new Map<string, ViewResource<Resource>>();
    const grants = this.deps.grants?.();
    for (const [server, resources] of await this.each('resources')) {
      for (const r of resources as Resource[]) if (!out.has(r.uri) && (!grants || grants.allows('resource', server, r.uri))) out.set(r.uri, { server, definition: r });
    }
    return sortedValues(out);
  }

  async resourceTemplates(): Promise<Array<ViewResource<ResourceTemplate>>> {
    const out = new Map<string, ViewResource<ResourceTemplate>>();
    const grants = this.deps.grants?.();
    for (const [server, templates] of await this.each('resourceTemplates')) {
      for (const t of templates as ResourceTemplate[]) {
        if (!out.has(t.uriTemplate) && (!grants || grants.allows('resource', server, t.uriTemplate))) out.set(t.uriTemplate, { server, definition: t });
      }
    }
    return sortedValues(out);
  }

  /** Nodes hosting `server`. */
  replicasOf(server: string): readonly string[] {
    return this.deps.catalog.listServers().find((s) => s.name === server)?.replicas ?? [];
  }

  /** One list of every server in the mesh, as this client sees it, in server order. */
  private async each(kind: keyof Lists): Promise<Array<[string, unknown[]]>> {
    const servers = this.deps.catalog.listServers().map((s) => s.name);
    const lists = await Promise.all(servers.map((server) => this.list(server, kind)));
    return servers.map((server, i) => [server, lists[i]!]);
  }

  private async list(server: string, kind: keyof Lists): Promise<unknown[]> {
    const own = this.deps.ownSession(server);
    if (own) {
      try {
        return await this.ownList(own, kind);
      } catch {
        // The client's own session failed (its node left, say): what the server shows its profile stands in.
      }
    }
    const listing = await this.deps.profiles.get(server, this.deps.profileKey, this.deps.peer).catch(() => this.deps.catalog.serverListing(server));
    return listing?.[kind] ?? [];
  }

  private ownList(session: UpstreamSession, kind: keyof Lists): Promise<unknown[]> {
    const capability = kind === 'resourceTemplates' ? 'resources' : kind;
    const caps = session.serverCapabilities;
    if (!caps[capability]) return Promise.resolve([]);
    const read = (): Promise<unknown[]> => READERS[kind](session);
    if ((caps[capability] as { listChanged?: boolean }).listChanged !== true) return read();
    let cached = this.ownLists.get(session);
    if (!cached) this.ownLists.set(session, (cached = new Map()));
    let list = cached.get(kind);
    if (!list) {
      list = read();
      const forgetOnFailure = cached;
      list.catch(() => forgetOnFailure.delete(kind));
      cached.set(kind, list);
    }
    return list;
  }
}

const READERS: Record<keyof Lists, (session: UpstreamSession) => Promise<unknown[]>> = {
  tools: readTools,
  resources: readResources,
  resourceTemplates: (s) => readResourceTemplates(s).catch(() => []),
  prompts: readPrompts,
};

function sortedValues<V>(map: Map<string, V>): V[] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}
