import { FlotillaMesh } from './FlotillaMesh.js';
import type { FlotillaProcess, LogLine } from './FlotillaProcess.js';
import { NatsServerProcess } from './NatsServerProcess.js';

/** The parts of `/api/v1/nodes` the chaos tests read. */
export interface NodesView {
  strategy: string;
  nodes: Array<{
    nodeId: string;
    breaker: string;
    draining: boolean;
    outstanding: number;
    load?: { inflight: number; queued: number; capacity: number; draining: boolean };
    loadReceivedAt?: number;
    progress: Array<{ callId: string; progress: number; total?: number }>;
    servers: Array<{ name: string; connected: boolean; toolBreakers?: Record<string, string> }>;
  }>;
}

/** The parts of `/api/v1/tools` the chaos tests read. */
export interface ToolsView {
  tools: Array<{ name: string; replicas: Array<{ nodeId: string; available: boolean }> }>;
}

/** Servers every chaos agent hosts: read-only (`echo`), idempotent (`slow`), non-idempotent (`ledger`). */
export const CHAOS_SERVERS = ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow', 'ledger=@flotilla/examples/ledger'];

/**
 * A mesh of real processes for chaos tests: nats-server, routers and agents (`flotilla` CLI), with the
 * helpers the tests share: the ops API, log lines, and direct calls to one agent bypassing the router.
 * Agents host `CHAOS_SERVERS` unless told otherwise.
 */
export class ChaosMesh extends FlotillaMesh {
  static override async start(): Promise<ChaosMesh> {
    return new ChaosMesh(await NatsServerProcess.start());
  }

  /** Spawns an agent (replacing any stopped one of the same id); resolves once it is ready. */
  override startAgent(nodeId: string, extraArgs: string[] = [], servers: readonly string[] = CHAOS_SERVERS, env: NodeJS.ProcessEnv = {}): Promise<FlotillaProcess> {
    return super.startAgent(nodeId, extraArgs, servers, env);
  }

  /** Log lines of a router matching `match` (the first router by default). */
  routerLines(match: (l: LogLine) => boolean, index = 0): LogLine[] {
    return this.routers[index]!.process.lines.filter(match);
  }

  /** The last `n` log lines of a router, compact, for assertion messages. */
  recentRouterLog(n = 15, index = 0): string {
    return this.routers[index]!.process.lines
      .slice(-n)
      .map((l) => [l.time, l.msg, l.nodeId, l.reason ?? l.err ?? ''].filter(Boolean).map(String).join(' | '))
      .join('\n');
  }

  /** Stops every process (SIGCONT first, in case a test left one paused) and the NATS server. */
  override async stop(): Promise<void> {
    for (const a of this.agents.values()) a.signal('SIGCONT');
    await super.stop(3000);
  }
}

/** Standard call shapes: `echo_echo` (read-only), `slow_work` (idempotent) and `ledger_append` (neither). */
export const chaosShapes = (stepMs: number, steps: number, prefix: string) => [
  { tool: 'echo_echo', kind: 'read-only' as const, args: (seq: number) => ({ text: `${prefix}-${seq}` }) },
  { tool: 'slow_work', kind: 'idempotent' as const, args: () => ({ steps, stepMs }) },
  { tool: 'ledger_append', kind: 'non-idempotent' as const, args: (seq: number) => ({ entry: `${prefix}-${seq}`, steps, stepMs }) },
];

/** What the `ledger_append` outcomes must satisfy after a node failure, and the ledger of each surviving node. */
export interface LedgerEntries {
  appended: number;
  cancelled: number;
  last: string[];
}
