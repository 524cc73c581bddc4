import type { HostedServer, ServerAffinity } from '@flotilla/protocol';
import type { McpEndpoint } from '../http/McpEndpoint.js';
import type { JsonRpcErrorObject } from '../http/SessionBudget.js';
import { serverUnavailable } from '../mounts/mountRefusals.js';
import { isMount, type ResolvedServerSpec } from '../mounts/MountSpecs.js';
import type { ServerHost } from './ServerHost.js';
import type { ToolCatalogProbe } from './ToolCatalogProbe.js';

/** One served server at run time: its spec, how it is hosted, its HTTP endpoint, its probe, and whether it answers. */
export class HostedServerRuntime {
  /** Last probe result: the server answered a ping. */
  serving = true;

  constructor(
    readonly spec: ResolvedServerSpec,
    readonly host: ServerHost,
    readonly endpoint: McpEndpoint,
    readonly probe: ToolCatalogProbe,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get affinity(): ServerAffinity {
    return this.spec.affinity;
  }

  /** A stdio command or remote URL, rather than a module hosted in the agent. */
  get mounted(): boolean {
    return isMount(this.spec);
  }

  /**
   * Why a new session is refused now: a mount that does not answer its health ping takes none (routers
   * then use other nodes until it answers again), nor does one whose host says it cannot (a process
   * restarting, a full pool).
   */
  refusal(nodeId: string): JsonRpcErrorObject | undefined {
    const fromHost = this.host.refusal?.();
    if (fromHost) return fromHost;
    if (this.mounted && !this.serving) return serverUnavailable(nodeId, this.name, 'it does not answer its health ping');
    return undefined;
  }

  /** The server as announced in the registry. */
  describe(): HostedServer {
    const catalog = this.probe.catalog;
    return { name: this.name, path: this.endpoint.path, toolDigest: catalog.digest, toolCount: catalog.tools.length, affinity: this.affinity };
  }

  /** What `/readyz` shows about it. */
  report(): Record<string, unknown> {
    return {
      kind: this.spec.kind,
      serving: this.serving,
      sessions: this.endpoint.sessionCount,
      tools: this.probe.catalog.tools.length,
      affinity: this.affinity,
      ...(this.host.status ? { mount: this.host.status() } : {}),
    };
  }
}
