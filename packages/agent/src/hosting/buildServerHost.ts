import type { Logger } from '@flotilla/telemetry';
import type { ResolvedServerSpec } from '../mounts/MountSpecs.js';
import { PooledStdioHost } from '../mounts/pooled/PooledStdioHost.js';
import { RemoteHost } from '../mounts/remote/RemoteHost.js';
import { SharedStdioHost } from '../mounts/shared/SharedStdioHost.js';
import { loadServerModule } from './loadServerModule.js';
import type { ServerHost } from './ServerHost.js';

/** What {@link buildServerHost} needs besides the spec. */
export interface ServerHostContext {
  readonly nodeId: string;
  /** Bound to the server's name. */
  readonly logger: Logger;
  readonly agentVersion: string;
}

/**
 * The host of one server spec: a module imported into the agent, a stdio command (one shared process,
 * or a process per session from a pool), or a remote URL. Mounted hosts are not started yet.
 */
export async function buildServerHost(spec: ResolvedServerSpec, ctx: ServerHostContext): Promise<ServerHost> {
  switch (spec.kind) {
    case 'module':
      return loadServerModule(spec, { nodeId: ctx.nodeId, server: spec.name });
    case 'stdio':
      return spec.sessions === 'shared'
        ? new SharedStdioHost({ nodeId: ctx.nodeId, spec, logger: ctx.logger, agentVersion: ctx.agentVersion })
        : new PooledStdioHost({ nodeId: ctx.nodeId, spec, logger: ctx.logger });
    case 'remote':
      return new RemoteHost({ nodeId: ctx.nodeId, spec, logger: ctx.logger });
  }
}
