import type { Logger } from '@flotilla/telemetry';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { HostedSession, ServerHost } from '../../hosting/ServerHost.js';
import { SessionRefusedError, serverUnavailable } from '../mountRefusals.js';
import type { ResolvedRemoteSpec } from '../MountSpecs.js';
import { PipeBridge } from '../pipe/PipeBridge.js';
import { RemoteEnd } from './RemoteEnd.js';

/** What {@link RemoteHost} needs. */
export interface RemoteHostDeps {
  readonly nodeId: string;
  readonly spec: ResolvedRemoteSpec;
  /** Bound to the server's name. */
  readonly logger: Logger;
}

/**
 * A remote server mounted by URL: each client session gets a session of its own with the remote server
 * ({@link RemoteEnd}), piped to it unchanged ({@link PipeBridge}). Remote servers hold many sessions, so
 * nothing is shared between clients.
 */
export class RemoteHost implements ServerHost {
  readonly style = 'remote';

  constructor(private readonly deps: RemoteHostDeps) {}

  open(transport: Transport): HostedSession {
    const { spec, nodeId, logger } = this.deps;
    const end = new RemoteEnd(spec, logger);
    const bridge = new PipeBridge({ nodeId, server: spec.name, logger, client: transport, end, initializeTimeoutMs: spec.timeoutMs });
    const ready = (async () => {
      try {
        await end.start();
      } catch (err) {
        await bridge.close('could not connect');
        throw new SessionRefusedError(serverUnavailable(nodeId, spec.name, `cannot reach ${new URL(spec.url).origin}: ${err instanceof Error ? err.message : String(err)}`));
      }
      await bridge.start();
    })();
    return { ready, close: () => bridge.close() };
  }

  status(): Record<string, unknown> {
    return { kind: 'remote', transport: this.deps.spec.transport, url: redactUrl(this.deps.spec.url) };
  }
}

/** The URL without user info or query (either may carry a secret). */
function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
