import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, type TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { eventually } from './eventually.js';
import { FlotillaProcess } from './FlotillaProcess.js';
import { NatsServerProcess } from './NatsServerProcess.js';

/** The parts of `/api/v1/tools` the mesh reads to know a tool's replicas. */
interface ReplicasView {
  tools: Array<{ name: string; replicas: Array<{ nodeId: string; available: boolean }> }>;
}

/**
 * A mesh of real processes for end-to-end tests: a nats-server, `flotilla router`s and `flotilla agent`s
 * (the built CLI), with what tests share: the routers' ops API, waiting for the catalog, MCP clients
 * (closed by `stop`), and direct calls to one agent bypassing the router.
 */
export class FlotillaMesh {
  readonly agents = new Map<string, FlotillaProcess>();
  readonly routers: Array<{ process: FlotillaProcess; url: string }> = [];
  private readonly clients: TestClient[] = [];
  /** Each agent's MCP base URL, from its `agent ready` line (the router's ops API does not say where nodes are). */
  private readonly agentUrls = new Map<string, string>();

  protected constructor(readonly nats: NatsServerProcess) {}

  /** Starts the nats-server; routers and agents are started on it with `startRouter` and `startAgent(s)`. */
  static async start(): Promise<FlotillaMesh> {
    return new FlotillaMesh(await NatsServerProcess.start());
  }

  /** Starts a router; resolves with its `/mcp` URL once it is ready. */
  async startRouter(args: string[] = [], label = `router-${this.routers.length + 1}`, env: NodeJS.ProcessEnv = {}): Promise<string> {
    const process = FlotillaProcess.spawn(label, ['router', '--nats', this.nats.url, '--port', '0', ...args], env);
    const url = String((await process.ready()).url);
    this.routers.push({ process, url });
    return url;
  }

  /** The first router's process. */
  get router(): FlotillaProcess {
    return this.firstRouter().process;
  }

  /** The first router's `/mcp` URL. */
  get routerUrl(): string {
    return this.firstRouter().url;
  }

  /** Spawns an agent hosting `servers` (`name=module`; replacing any stopped one of the same id); resolves once it is ready. */
  async startAgent(nodeId: string, extraArgs: string[] = [], servers: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<FlotillaProcess> {
    const args = ['agent', '--node-id', nodeId, '--nats', this.nats.url, '--port', '0', '--grpc-port', '0', ...extraArgs];
    for (const s of servers) args.push('--server', s);
    const agent = FlotillaProcess.spawn(nodeId, args, env);
    this.agents.set(nodeId, agent);
    this.agentUrls.set(nodeId, String((await agent.ready(60_000)).url));
    return agent;
  }

  /** Starts agents side by side, node id → the servers it hosts (`name=module`); resolves once all are ready. */
  async startAgents(servers: Record<string, readonly string[]>, env: NodeJS.ProcessEnv = {}): Promise<void> {
    await Promise.all(Object.entries(servers).map(([nodeId, s]) => this.startAgent(nodeId, [], s, env)));
  }

  agent(nodeId: string): FlotillaProcess {
    const a = this.agents.get(nodeId);
    if (!a) throw new Error(`no agent ${nodeId}`);
    return a;
  }

  /** URL of a router's endpoint at `path` (`/metrics`, `/readyz`...); the first router by default. */
  opsUrl(path: string, routerUrl: string = this.routerUrl): string {
    return routerUrl.replace(/\/mcp$/, path);
  }

  /** GETs a router's ops endpoint (`/api/v1/nodes`...) as JSON; the first router by default. */
  async api<T>(path: string, routerUrl: string = this.routerUrl): Promise<T> {
    return (await (await fetch(this.opsUrl(path, routerUrl))).json()) as T;
  }

  /** Waits until every router lists `tool` on exactly `nodeIds`, all available. */
  async waitForReplicas(tool: string, nodeIds: readonly string[], timeoutMs = 30_000): Promise<void> {
    const wanted = [...nodeIds].sort().join(',');
    for (const { url } of this.routers) {
      await eventually(async () => {
        const view = await this.api<ReplicasView>('/api/v1/tools', url);
        const replicas = view.tools.find((t) => t.name === tool)?.replicas.filter((r) => r.available).map((r) => r.nodeId).sort().join(',');
        if (replicas !== wanted) throw new Error(`${tool} on [${replicas ?? ''}], want [${wanted}]`);
      }, timeoutMs, 100);
    }
  }

  /** Waits until every router lists each tool on exactly its node ids, all available: `{ echo_echo: ['a1', 'a2'] }`. */
  async waitForCatalog(replicas: Record<string, readonly string[]>, timeoutMs = 60_000): Promise<void> {
    for (const [tool, nodeIds] of Object.entries(replicas)) await this.waitForReplicas(tool, nodeIds, timeoutMs);
  }

  /** Connects an MCP client (answering sampling and elicitation) to the first router; `stop` closes it. */
  async connectClient(name?: string): Promise<TestClient> {
    const client = await connectClient(this.routerUrl, name);
    this.clients.push(client);
    return client;
  }

  /** The MCP endpoint of `server` on one agent (for direct calls that bypass the router). */
  serverUrl(nodeId: string, server: string): string {
    const base = this.agentUrls.get(nodeId);
    if (!base) throw new Error(`no agent ${nodeId} started`);
    return `${base}/mcp/${server}`;
  }

  /** Calls `tool` of `server` directly on one agent (not through a router); returns its structured content. */
  async callDirect<T>(nodeId: string, server: string, tool: string, args: Record<string, unknown> = {}): Promise<T> {
    const url = this.serverUrl(nodeId, server);
    const client = new Client({ name: 'mesh-direct', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    try {
      return (await client.callTool({ name: tool, arguments: args })).structuredContent as T;
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  }

  /** Closes the clients, stops every process (SIGTERM, SIGKILL after `graceMs`) and the NATS server. */
  async stop(graceMs = 5000): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
    await Promise.all([...this.routers.map((r) => r.process), ...this.agents.values()].map((p) => p.stop(graceMs)));
    await this.nats.dispose();
  }

  private firstRouter(): { process: FlotillaProcess; url: string } {
    const first = this.routers[0];
    if (!first) throw new Error('no router started');
    return first;
  }
}
