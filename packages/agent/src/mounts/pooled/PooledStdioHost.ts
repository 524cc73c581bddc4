import type { Logger } from '@flotilla/telemetry';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JsonRpcErrorObject } from '../../http/SessionBudget.js';
import type { HostedSession, ServerHost } from '../../hosting/ServerHost.js';
import type { ResolvedStdioSpec } from '../MountSpecs.js';
import { PipeBridge } from '../pipe/PipeBridge.js';
import { ProcessEnd } from './ProcessEnd.js';
import { ProcessPool } from './ProcessPool.js';

/** What {@link PooledStdioHost} needs. */
export interface PooledStdioHostDeps {
  readonly nodeId: string;
  readonly spec: ResolvedStdioSpec;
  /** Bound to the server's name. */
  readonly logger: Logger;
}

/**
 * A stdio server mounted with `sessions: per-session`: every client session gets a process of its own
 * from a {@link ProcessPool}, piped to it unchanged ({@link PipeBridge}), and stopped when the session ends.
 */
export class PooledStdioHost implements ServerHost {
  readonly style = 'stdio';
  private readonly pool: ProcessPool;

  constructor(private readonly deps: PooledStdioHostDeps) {
    this.pool = new ProcessPool({ nodeId: deps.nodeId, spec: deps.spec, logger: deps.logger });
  }

  open(transport: Transport): HostedSession {
    let bridge: PipeBridge | undefined;
    const ready = (async () => {
      const proc = await this.pool.take();
      const end = new ProcessEnd(proc);
      void end.ended.then(() => this.pool.released(proc, !end.stoppedByAgent, end.servedMs));
      const log = this.deps.logger.child({ pid: proc.pid });
      bridge = new PipeBridge({ nodeId: this.deps.nodeId, server: this.deps.spec.name, logger: log, client: transport, end, initializeTimeoutMs: this.deps.spec.startupTimeoutMs });
      await bridge.start();
    })();
    return {
      ready,
      close: async () => {
        await ready.catch(() => {});
        if (bridge) await bridge.close();
        else await transport.close().catch(() => {});
      },
    };
  }

  refusal(): JsonRpcErrorObject | undefined {
    return this.pool.refusal();
  }

  start(): Promise<void> {
    return this.pool.start();
  }

  stop(): Promise<void> {
    return this.pool.stop();
  }

  status(): Record<string, unknown> {
    return { kind: 'stdio', sessions: 'per-session', ...this.pool.status() };
  }
}
