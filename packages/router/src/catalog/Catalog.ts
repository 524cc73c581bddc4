import { namespacedName } from '@flotilla/protocol';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import type {
  CatalogChange,
  PromptEntry,
  ResourceEntry,
  ResourceTemplateEntry,
  ServerEntry,
  ServerRoute,
  ToolEntry,
} from './CatalogEntries.js';
import type { ServerListing } from './ServerListing.js';

type Listener = (change: CatalogChange) => void;

/** The merged, client-facing view built from the listings; rebuilt whole on every change. */
interface MergedView {
  tools: Map<string, ToolEntry>;
  prompts: Map<string, PromptEntry>;
  resources: Map<string, ResourceEntry>;
  templates: ResourceTemplateEntry[];
  servers: ServerEntry[];
  signatures: { tools: string; resources: string; prompts: string; replicas: string };
}

/**
 * The mesh's merged view: what each node's hosted servers offer, combined into ONE namespace. Tools and
 * prompts become `<server>_<name>`; resources keep their URIs and route to the server offering them. The
 * same server on several nodes is one entry with several replicas. When replicas disagree (a rolling
 * upgrade), each item is described by the replica with the smallest node id that has it, and routes only
 * to the replicas that have it.
 *
 * Listeners hear which client-visible lists changed, so the front can send `list_changed` only when a
 * client would see a difference.
 */
export class Catalog {
  /** server → nodeId → listing fetched from that replica. */
  private readonly listings = new Map<string, Map<string, ServerListing>>();
  private readonly listeners = new Set<Listener>();
  /** Bumped whenever a server's listings change: what caches of per-client views of it compare against. */
  private readonly versions = new Map<string, number>();
  private view: MergedView = Catalog.merge(new Map());

  /** Records what `server` offers on `nodeId` (a new replica, or a refreshed listing). */
  setListing(server: string, nodeId: string, listing: ServerListing): void {
    let replicas = this.listings.get(server);
    if (!replicas) this.listings.set(server, (replicas = new Map()));
    replicas.set(nodeId, listing);
    this.bump(server);
    this.rebuild();
  }

  /** Forgets the replica of `server` on `nodeId` (disconnected, or the node stopped hosting it). */
  removeListing(server: string, nodeId: string): void {
    const replicas = this.listings.get(server);
    if (!replicas?.delete(nodeId)) return;
    if (replicas.size === 0) this.listings.delete(server);
    this.bump(server);
    this.rebuild();
  }

  /** Forgets every replica on `nodeId` (the node left). */
  removeNode(nodeId: string): void {
    let removed = false;
    for (const [server, replicas] of this.listings) {
      if (replicas.delete(nodeId)) {
        removed = true;
        this.bump(server);
      }
      if (replicas.size === 0) this.listings.delete(server);
    }
    if (removed) this.rebuild();
  }

  /** Whether the catalog holds a listing of `server` from `nodeId`. */
  hasListing(server: string, nodeId: string): boolean {
    return this.listings.get(server)?.has(nodeId) === true;
  }

  /** A number that changes whenever what `server` offers on any replica changes. */
  serverVersion(server: string): number {
    return this.versions.get(server) ?? 0;
  }

  /** What `server` offers, as its replica with the smallest node id lists it (instructions come from here). */
  serverListing(server: string): ServerListing | undefined {
    const replicas = this.listings.get(server);
    if (!replicas) return undefined;
    const first = [...replicas.keys()].sort()[0];
    return first === undefined ? undefined : replicas.get(first);
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  listTools(): ToolEntry[] {
    return [...this.view.tools.values()];
  }

  tool(name: string): ToolEntry | undefined {
    return this.view.tools.get(name);
  }

  listPrompts(): PromptEntry[] {
    return [...this.view.prompts.values()];
  }

  prompt(name: string): PromptEntry | undefined {
    return this.view.prompts.get(name);
  }

  listResources(): ResourceEntry[] {
    return [...this.view.resources.values()];
  }

  listResourceTemplates(): ResourceTemplateEntry[] {
    return [...this.view.templates];
  }

  listServers(): ServerEntry[] {
    return [...this.view.servers];
  }

  /** The server (and its replicas) that can read `uri`: an exact resource first, then the first matching template. */
  routeResource(uri: string): ServerRoute | undefined {
    const exact = this.view.resources.get(uri);
    if (exact) return { server: exact.server, replicas: exact.replicas };
    for (const template of this.view.templates) {
      if (Catalog.matches(template.matcher, uri)) return { server: template.server, replicas: template.replicas };
    }
    return undefined;
  }

  /** The template entry whose template string is exactly `uriTemplate` (completion references name templates). */
  resourceTemplate(uriTemplate: string): ResourceTemplateEntry | undefined {
    return this.view.templates.find((t) => t.uriTemplate === uriTemplate);
  }

  private bump(server: string): void {
    this.versions.set(server, this.serverVersion(server) + 1);
  }

  private rebuild(): void {
    const before = this.view.signatures;
    this.view = Catalog.merge(this.listings);
    const after = this.view.signatures;
    const change: CatalogChange = {
      tools: before.tools !== after.tools,
      resources: before.resources !== after.resources,
      prompts: before.prompts !== after.prompts,
      replicas: before.replicas !== after.replicas,
    };
    if (!change.tools && !change.resources && !change.prompts && !change.replicas) return;
    for (const listener of this.listeners) listener(change);
  }

  private static matches(matcher: UriTemplate, uri: string): boolean {
    try {
      return matcher.match(uri) !== null;
    } catch {
      // A URI the template's matcher cannot handle (e.g. over its length limit) simply does not match.
      return false;
    }
  }

  private static merge(listings: ReadonlyMap<string, ReadonlyMap<string, ServerListing>>): MergedView {
    const tools = new Map<string, { entry: Omit<ToolEntry, 'replicas'>; replicas: string[] }>();
    const prompts = new Map<string, { entry: Omit<PromptEntry, 'replicas'>; replicas: string[] }>();
    const resources = new Map<string, { entry: Omit<ResourceEntry, 'replicas'>; replicas: string[] }>();
    const templates = new Map<string, { entry: Omit<ResourceTemplateEntry, 'replicas'>; replicas: string[] }>();
    const servers: ServerEntry[] = [];

    for (const server of [...listings.keys()].sort()) {
      const replicas = listings.get(server)!;
      const nodeIds = [...replicas.keys()].sort();
      servers.push({ name: server, replicas: nodeIds });
      for (const nodeId of nodeIds) {
        const listing = replicas.get(nodeId)!;
        for (const tool of listing.tools) {
          const name = namespacedName(server, tool.name);
          const known = tools.get(name);
          if (known) {
            if (known.entry.server === server) known.replicas.push(nodeId);
            continue;
          }
          const annotations = tool.annotations;
          tools.set(name, {
            entry: {
              name,
              server,
              upstreamName: tool.name,
              definition: { ...tool, name },
              retryableAfterAcceptance: annotations?.readOnlyHint === true || annotations?.idempotentHint === true,
            },
            replicas: [nodeId],
          });
        }
        for (const prompt of listing.prompts) {
          const name = namespacedName(server, prompt.name);
          const known = prompts.get(name);
          if (known) {
            if (known.entry.server === server) known.replicas.push(nodeId);
            continue;
          }
          prompts.set(name, { entry: { name, server, upstreamName: prompt.name, definition: { ...prompt, name } }, replicas: [nodeId] });
        }
        for (const resource of listing.resources) {
          const known = resources.get(resource.uri);
          if (known) {
            // Two different servers offering one URI: the first server (by name) owns it.
            if (known.entry.server === server) known.replicas.push(nodeId);
            continue;
          }
          resources.set(resource.uri, { entry: { uri: resource.uri, server, definition: resource }, replicas: [nodeId] });
        }
        for (const template of listing.resourceTemplates) {
          const known = templates.get(template.uriTemplate);
          if (known) {
            if (known.entry.server === server) known.replicas.push(nodeId);
            continue;
          }
          let matcher: UriTemplate;
          try {
            matcher = new UriTemplate(template.uriTemplate);
          } catch {
            continue; // a template the SDK cannot parse can be neither listed usefully nor routed
          }
          templates.set(template.uriTemplate, {
            entry: { uriTemplate: template.uriTemplate, server, definition: template, matcher },
            replicas: [nodeId],
          });
        }
      }
    }

    const finish = <E>(m: Map<string, { entry: Omit<E, 'replicas'>; replicas: string[] }>): Map<string, E> =>
      new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, { ...v.entry, replicas: v.replicas } as E]));
    const toolMap = finish<ToolEntry>(tools);
    const promptMap = finish<PromptEntry>(prompts);
    const resourceMap = finish<ResourceEntry>(resources);
    const templateList = [...finish<ResourceTemplateEntry>(templates).values()];

    return {
      tools: toolMap,
      prompts: promptMap,
      resources: resourceMap,
      templates: templateList,
      servers,
      signatures: {
        tools: JSON.stringify([...toolMap.values()].map((t) => t.definition)),
        prompts: JSON.stringify([...promptMap.values()].map((p) => p.definition)),
        resources: JSON.stringify([[...resourceMap.values()].map((r) => r.definition), templateList.map((t) => t.definition)]),
        replicas: JSON.stringify([servers, [...toolMap.values()].map((t) => [t.name, t.replicas])]),
      },
    };
  }
}
