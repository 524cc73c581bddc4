/**
 * What the benchmark suite measures, started side by side on this machine: a nats-server, one agent hosting
 * the fastmcp `echo` example, a router in front of it, and a bare SDK server (the floor). Each target is an
 * MCP endpoint, the tool to call there, and the process whose CPU counters say what the hop costs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { FlotillaProcess } from '../../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../../harness/NatsServerProcess.js';
import { RawMcpSession } from './RawMcpClient.js';

/** One endpoint the suite calls. */
export interface BenchTarget {
  /** Row label in the tables. */
  name: string;
  url: string;
  tool: string;
  /** The process that is this hop (its CPU is what the hop costs); none for a direct call's own server. */
  pid: number;
  /** Headers every request carries (credentials). */
  headers?: Record<string, string>;
}

/** The started processes and the targets over them. */
export class BenchTargets {
  private constructor(
    readonly nats: NatsServerProcess,
    readonly agent: FlotillaProcess,
    readonly router: FlotillaProcess,
    private readonly bare: ChildProcess,
    readonly targets: { bare: BenchTarget; agent: BenchTarget; router: BenchTarget },
  ) {}

  static async start(): Promise<BenchTargets> {
    const nats = await NatsServerProcess.start();
    const agent = FlotillaProcess.spawn('agent', ['agent', '--node-id', 'bench-1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--grpc-port', '0', '--capacity', '512', '--max-queue', '4096'], {});
    const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0'], {});
    const bare = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./bareSdkServer.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(bare.stdout!, 'data')) as [Buffer];
    const bareUrl = (JSON.parse(line.toString()) as { url: string }).url;
    const agentUrl = String((await agent.ready()).url);
    const routerUrl = `${String((await router.ready()).url)}`;
    const targets = {
      bare: { name: 'bare SDK server', url: bareUrl, tool: 'echo', pid: bare.pid! },
      agent: { name: 'agent (fastmcp echo)', url: `${agentUrl}/mcp/echo`, tool: 'echo', pid: agent.child.pid! },
      router: { name: 'router → agent', url: routerUrl, tool: 'echo_echo', pid: router.child.pid! },
    };
    await waitForTool(targets.router);
    return new BenchTargets(nats, agent, router, bare, targets);
  }

  async stop(): Promise<void> {
    this.bare.kill('SIGTERM');
    await Promise.allSettled([this.router.stop(), this.agent.stop()]);
    await this.nats.dispose();
  }
}

/** Waits until a target answers a call of its tool (a router has it in its catalog). */
export async function waitForTool(target: BenchTarget, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const session = await RawMcpSession.open(target.url, target.headers);
  try {
    for (;;) {
      try {
        await session.call(target.tool, { text: 'probe' });
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await session.close();
  }
}
