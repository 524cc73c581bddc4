/**
 * What the benchmark suite measures, started side by side on this machine: a nats-server, one agent hosting
 * the fastmcp `echo` example and the SDK `sdkEcho` example, a router in front of it (and one with the front
 * door on), and the SDK `sdkEcho` server bare (the floor). Each target is an
 * MCP endpoint, the tool to call there, and the process whose CPU counters say what the hop costs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiKey } from '../../../packages/router/src/index.js';
import { CLI_BIN, FlotillaProcess } from '../../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../../harness/NatsServerProcess.js';
import { RawMcpSession } from './RawMcpClient.js';

/** How long each process may take to start: on a machine busy with other work, longer than the harness's default. */
const READY_MS = 90_000;

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
  /** The path this one adds a hop in front of (its overhead is over that row); the row before it if unset. */
  over?: string;
}

/** The started processes and the targets over them. */
export class BenchTargets {
  private constructor(
    readonly nats: NatsServerProcess,
    readonly agent: FlotillaProcess,
    readonly router: FlotillaProcess,
    private readonly bare: ChildProcess,
    private readonly proxy: ChildProcess | undefined,
    readonly targets: { bare: BenchTarget; agentSdk: BenchTarget; agent: BenchTarget; minimalProxy: BenchTarget; router: BenchTarget; authRouter: BenchTarget; baselineRouter?: BenchTarget; baselineAgent?: BenchTarget },
    private readonly extra: { authRouter: FlotillaProcess; dir: string; baselineRouter?: FlotillaProcess; baselineAgent?: { agent: FlotillaProcess; nats: NatsServerProcess }; agentProfiled: boolean },
  ) {}

  /**
   * `profileDir`: the router (and the baseline router) writes a V8 CPU profile there when it stops (`node
   * --cpu-prof`, file names carry the pid); `agentProfileDir`: the agent does.
   * `baselineBin`: another build's `packages/cli/dist/bin.js`; a router of that build runs beside this one
   * on the same agent (one more target), so two versions are compared in one run.
   * `baselineAgentBin`: the same for the agent; that agent has a NATS server of its own, so no router sees it.
   */
  static async start(options: { profileDir?: string; agentProfileDir?: string; baselineBin?: string; baselineAgentBin?: string } = {}): Promise<BenchTargets> {
    const nats = await NatsServerProcess.start();
    const agentProfile = options.agentProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.agentProfileDir}`] : [];
    const agentArgs = (url: string): string[] => ['agent', '--node-id', 'bench-1', '--server', 'echo=@flotilla/examples/echo', '--nats', url, '--port', '0', '--grpc-port', '0', '--capacity', '512', '--max-queue', '4096'];
    // The agent also hosts the very SDK server the bare target runs: its row is the agent's own cost.
    const agent = FlotillaProcess.spawn('agent', [...agentArgs(nats.url), '--server', 'sdk=@flotilla/examples/sdkEcho'], {}, CLI_BIN, agentProfile);
    const baselineNats = options.baselineAgentBin ? await NatsServerProcess.start() : undefined;
    const baselineAgent = options.baselineAgentBin && baselineNats ? { agent: FlotillaProcess.spawn('baseline-agent', agentArgs(baselineNats.url), {}, options.baselineAgentBin), nats: baselineNats } : undefined;
    const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
    // The fair queue's defaults (8 calls per session, 32 per client) would cap the sweep, not the router's speed.
    const limits = ['--session-concurrency', '1024', '--client-concurrency', '1024', '--max-concurrent-calls', '4096'];
    const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0', ...limits], {}, CLI_BIN, profile);
    // The same router with the front door on: an API key (hashed in its file) and an access policy.
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-bench-'));
    const key = createApiKey({ subject: 'bench-bot', roles: ['bench'] });
    await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: [key.entry] }));
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ rules: [{ name: 'bench', match: { roles: ['bench'] }, allow: { servers: ['echo'] } }] }));
    const authArgs = ['--api-keys-file', join(dir, 'keys.json'), '--policy-file', join(dir, 'policy.json'), '--max-sessions-per-identity', '4096'];
    const authRouter = FlotillaProcess.spawn('auth-router', ['router', '--nats', nats.url, '--port', '0', ...limits, ...authArgs], {});
    const bare = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./bareSdkServer.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
    const baselineRouter = options.baselineBin ? FlotillaProcess.spawn('baseline-router', ['router', '--nats', nats.url, '--port', '0', ...limits], {}, options.baselineBin, profile) : undefined;
    // A profiled agent gets time to drain and write its profile (SIGKILL would lose it).
    const extra = { authRouter, dir, agentProfiled: options.agentProfileDir !== undefined, ...(baselineRouter ? { baselineRouter } : {}), ...(baselineAgent ? { baselineAgent } : {}) };
    let proxy: ChildProcess | undefined;
    try {
      const bareUrl = await printedUrl(bare);
      const agentUrl = String((await agent.ready(READY_MS)).url);
      // The floor of a Node.js proxy hop, in front of the same agent's fastmcp echo as the routers.
      proxy = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./minimalProxy.ts', import.meta.url)), `${agentUrl}/mcp/echo`, 'echo_'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const proxyUrl = await printedUrl(proxy);
      const routerUrl = String((await router.ready(READY_MS)).url);
      const authUrl = String((await authRouter.ready(READY_MS)).url);
      const baselineUrl = baselineRouter ? String((await baselineRouter.ready(READY_MS)).url) : undefined;
      const baselineAgentUrl = baselineAgent ? String((await baselineAgent.agent.ready(READY_MS)).url) : undefined;
      const targets = {
        bare: { name: 'bare SDK server', url: bareUrl, tool: 'echo', pid: bare.pid! },
        agentSdk: { name: 'agent (the same SDK server)', url: `${agentUrl}/mcp/sdk`, tool: 'echo', pid: agent.child.pid! },
        agent: { name: 'agent (fastmcp echo)', url: `${agentUrl}/mcp/echo`, tool: 'echo', pid: agent.child.pid! },
        minimalProxy: { name: 'minimal Node proxy → agent (a hop with no features)', url: proxyUrl, tool: 'echo_echo', pid: proxy.pid!, over: 'agent (fastmcp echo)' },
        router: { name: 'router → agent', url: routerUrl, tool: 'echo_echo', pid: router.child.pid!, over: 'agent (fastmcp echo)' },
        authRouter: { name: 'router → agent, auth on (API key, policy)', url: authUrl, tool: 'echo_echo', pid: authRouter.child.pid!, headers: { authorization: `Bearer ${key.key}` } },
        ...(baselineRouter && baselineUrl ? { baselineRouter: { name: 'baseline router → agent', url: baselineUrl, tool: 'echo_echo', pid: baselineRouter.child.pid! } } : {}),
        ...(baselineAgent && baselineAgentUrl ? { baselineAgent: { name: 'baseline agent (fastmcp echo)', url: `${baselineAgentUrl}/mcp/echo`, tool: 'echo', pid: baselineAgent.agent.child.pid! } } : {}),
      };
      await Promise.all([waitForTool(targets.router), waitForTool(targets.authRouter), ...(targets.baselineRouter ? [waitForTool(targets.baselineRouter)] : [])]);
      return new BenchTargets(nats, agent, router, bare, proxy, targets, extra);
    } catch (err) {
      await new BenchTargets(nats, agent, router, bare, proxy, {} as never, extra).stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.bare.kill('SIGTERM');
    this.proxy?.kill('SIGTERM');
    await Promise.allSettled([this.router.stop(), this.extra.authRouter.stop(), this.extra.baselineRouter?.stop(), this.extra.baselineAgent?.agent.stop(), this.agent.stop(this.extra.agentProfiled ? 60_000 : undefined)]);
    await Promise.all([this.nats.dispose(), this.extra.baselineAgent?.nats.dispose()]);
    await rm(this.extra.dir, { recursive: true, force: true });
  }
}

/** The URL a helper process prints as its first line of JSON. */
async function printedUrl(child: ChildProcess): Promise<string> {
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return (JSON.parse(line.toString()) as { url: string }).url;
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
