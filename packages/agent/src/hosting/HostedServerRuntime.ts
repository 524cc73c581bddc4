import type { HostedServer, ServerAffinity } from '@flotilla/protocol';
import type { McpEndpoint } from '../http/McpEndpoint.js';
import type { ServerHost } from './ServerHost.js';
import type { ToolCatalogProbe } from './ToolCatalogProbe.js';

/** One hosted server at run time: how it is hosted, its HTTP endpoint, its probe, and whether it answers. */
export class HostedServerRuntime {
  /** Last probe result: the server answered a ping. */
  serving = true;

  constructor(
    readonly name: string,
    readonly host: ServerHost,
    readonly endpoint: McpEndpoint,
    readonly probe: ToolCatalogProbe,
    readonly affinity: ServerAffinity,
  ) {}

  /** The server as announced in the registry. */
  describe(): HostedServer {
    const catalog = this.probe.catalog;
    return { name: this.name, path: this.endpoint.path, toolDigest: catalog.digest, toolCount: catalog.tools.length, affinity: this.affinity };
  }
}
