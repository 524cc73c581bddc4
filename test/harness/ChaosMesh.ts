import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { eventually } from './eventually.js';
import { FlotillaProcess, type LogLine } from './FlotillaProcess.js';
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
    servers: Array<{ name: string; url: string; connected: boolean; toolBreakers?: Record<string, string> }>;
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
 */
export class ChaosMesh {
  readonly agents = new Map<string, FlotillaProcess>();
  readonly routers: Array<{ process: FlotillaProcess; url: string }> = [];

  private constructor(readonly nats: NatsServerProcess) {}

  static async start(): Promise<ChaosMesh> {
    return new ChaosMesh(await NatsServerProcess.start());
  }

  /** Starts a router; resolves with its `/mcp` URL once it is ready. */
  async startRouter(args: string[] = [], label = `router-${this.routers.length + 1}`): Promise<string> {
    const process = FlotillaProcess.spawn(label, ['router', '--nats', this.nats.url, '--port', '0', ...args]);
    const url = String((await process.ready()).url);
    this.routers.push({ process, url });
    return url;
  }

  /** Spawns an agent (replacing any stopped one of the same id); resolves once it is ready. */
  async startAgent(nodeId: string, extraArgs: string[] = [], servers: readonly string[] = CHAOS_SERVERS, env: NodeJS.ProcessEnv = {}): Promise<FlotillaProcess> {
    const args = ['agent', '--node-id', nodeId, '--nats', this.nats.url, '--port', '0', '--grpc-port', '0', ...extraArgs];
    for (const s of servers) args.push('--server', s);
    const agent = FlotillaProcess.spawn(nodeId, args, env);
    this.agents.set(nodeId, agent);
    await agent.ready(60_000);
    return agent;
  }

  agent(nodeId: string): FlotillaProcess {
    const a = this.agents.get(nodeId);
    if (!a) throw new Error(`no agent ${nodeId}`);
    return a;
  }

  /** GETs a router's ops endpoint (`/api/v1/nodes`...); the first router by default. */
  async api<T>(path: string, routerUrl: string = this.routers[0]!.url): Promise<T> {
    return (await (await fetch(routerUrl.replace(/\/mcp$/, path))).json()) as T;
  }

  /** Waits until every router lists `tool` on exactly `nodeIds`, all available. */
  async waitForReplicas(tool: string, nodeIds: readonly string[], timeoutMs = 30_000): Promise<void> {
    const wanted = [...nodeIds].sort().join(',');
    for (const { url } of this.routers) {
      await eventually(async () => {
        const view = await this.api<ToolsView>('/api/v1/tools', url);
        const replicas = view.tools.find((t) => t.name === tool)?.replicas.filter((r) => r.available).map((r) => r.nodeId).sort().join(',');
        if (replicas !== wanted) throw new Error(`${tool} on [${replicas ?? ''}], want [${wanted}]`);
      }, timeoutMs, 100);
    }
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

  /** Calls `tool` of `server` directly on one agent (not through a router); returns its structured content. */
  async callDirect<T>(nodeId: string, server: string, tool: string, args: Record<string, unknown> = {}): Promise<T> {
    const view = await this.api<NodesView>('/api/v1/nodes');
    const url = view.nodes.find((n) => n.nodeId === nodeId)?.servers.find((s) => s.name === server)?.url;
    if (!url) throw new Error(`${server} on ${nodeId} is not in the node view`);
    const client = new Client({ name: 'chaos-direct', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    try {
      return (await client.callTool({ name: tool, arguments: args })).structuredContent as T;
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  }

  /** Stops every process (SIGCONT first, in case a test left one paused) and the NATS server. */
  async stop(): Promise<void> {
    for (const a of this.agents.values()) a.signal('SIGCONT');
    await Promise.all([...this.routers.map((r) => r.process), ...this.agents.values()].map((p) => p.stop(3000)));
    await this.nats.dispose();
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
