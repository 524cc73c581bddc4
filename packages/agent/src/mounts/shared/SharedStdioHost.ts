import type { Logger } from '@flotilla/telemetry';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JsonRpcErrorObject } from '../../http/SessionBudget.js';
import type { HostedSession, ServerHost } from '../../hosting/ServerHost.js';
import { serverUnavailable } from '../mountRefusals.js';
import type { ResolvedStdioSpec } from '../MountSpecs.js';
import { SharedSessionMux } from './SharedSessionMux.js';
import { SharedStdioBackend } from './SharedStdioBackend.js';

/** What {@link SharedStdioHost} needs. */
export interface SharedStdioHostDeps {
  readonly nodeId: string;
  readonly spec: ResolvedStdioSpec;
  /** Bound to the server's name. */
  readonly logger: Logger;
  readonly agentVersion: string;
}

/**
 * A stdio server mounted with `sessions: shared`: one process (kept running, restarted with backoff)
 * serves every client session, multiplexed by a {@link SharedSessionMux}.
 */
export class SharedStdioHost implements ServerHost {
  readonly style = 'stdio';
  private readonly backend: SharedStdioBackend;
  private readonly mux: SharedSessionMux;

  constructor(private readonly deps: SharedStdioHostDeps) {
    this.backend = new SharedStdioBackend({
      spec: deps.spec,
      logger: deps.logger,
      clientInfo: { name: `flotilla-agent ${deps.nodeId}`, version: deps.agentVersion },
      events: {
        ready: () => {},
        down: (reason) => this.mux.lost(reason),
        message: (m) => this.mux.receive(m),
      },
    });
    this.mux = new SharedSessionMux({ nodeId: deps.nodeId, server: deps.spec.name, logger: deps.logger, backend: this.backend });
  }

  open(transport: Transport): HostedSession {
    return this.mux.attach(transport);
  }

  refusal(): JsonRpcErrorObject | undefined {
    const why = this.backend.unavailable();
    return why === undefined ? undefined : serverUnavailable(this.deps.nodeId, this.deps.spec.name, why);
  }

  start(): Promise<void> {
    return this.backend.start();
  }

  async stop(): Promise<void> {
    await this.backend.stop();
  }

  status(): Record<string, unknown> {
    return { kind: 'stdio', sessions: 'shared', ...this.backend.status(), attached: this.mux.sessionCount, inflight: this.mux.inflightCount };
  }
}
