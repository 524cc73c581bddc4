import type { Prompt, Resource, ResourceTemplate, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';

/** A tool as clients see it (namespaced), with where it runs. */
export interface ToolEntry {
  /** Namespaced name clients call, `<server>_<tool>`. */
  readonly name: string;
  readonly server: string;
  /** The name the hosting server knows the tool by. */
  readonly upstreamName: string;
  /** The definition sent to clients (its `name` is the namespaced one). */
  readonly definition: Tool;
  /** Nodes hosting a replica, sorted. */
  readonly replicas: readonly string[];
  /** Annotated `readOnlyHint` or `idempotentHint`: safe to run again on another node after a node failed mid-call. */
  readonly retryableAfterAcceptance: boolean;
}

/** A prompt as clients see it (namespaced like tools). */
export interface PromptEntry {
  readonly name: string;
  readonly server: string;
  readonly upstreamName: string;
  readonly definition: Prompt;
  readonly replicas: readonly string[];
}

/** A concrete resource; URIs are not namespaced, they route to the server that offers them. */
export interface ResourceEntry {
  readonly uri: string;
  readonly server: string;
  readonly definition: Resource;
  readonly replicas: readonly string[];
}

/** A resource template, with a matcher to route `resources/read` of URIs it covers. */
export interface ResourceTemplateEntry {
  readonly uriTemplate: string;
  readonly server: string;
  readonly definition: ResourceTemplate;
  readonly replicas: readonly string[];
  readonly matcher: UriTemplate;
}

/** Where a request that is not a tool call goes. */
export interface ServerRoute {
  readonly server: string;
  readonly replicas: readonly string[];
}

/** One hosted server across the mesh. */
export interface ServerEntry {
  readonly name: string;
  readonly replicas: readonly string[];
}

/** Which client-visible lists changed; `replicas` alone means only placement changed. */
export interface CatalogChange {
  tools: boolean;
  resources: boolean;
  prompts: boolean;
  replicas: boolean;
}
