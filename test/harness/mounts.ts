import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GrpcHealthProbe } from '../consul-standin/grpcHealthProbe.js';

const require = createRequire(import.meta.url);

/** The example stdio server `worker` (built): `node WORKER_BIN` is one MCP session over stdio. */
export const WORKER_BIN = fileURLToPath(new URL('../../packages/examples/dist/stdio/worker.js', import.meta.url));
/** The example remote server that wants a bearer token (built). */
export const BEARER_SERVER_BIN = fileURLToPath(new URL('../../packages/examples/dist/remote/bearerServer.js', import.meta.url));

/** The installed bin script of a third-party MCP server package (from the root devDependencies). */
export function thirdPartyBin(pkg: '@modelcontextprotocol/server-filesystem' | '@modelcontextprotocol/server-memory' | '@modelcontextprotocol/server-sequential-thinking'): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = require(manifestPath) as { bin: Record<string, string> };
  const bin = Object.values(manifest.bin)[0];
  if (!bin) throw new Error(`${pkg} has no bin`);
  return join(dirname(manifestPath), bin);
}

/** A stdio entry of a servers.json running `script` with this Node.js, as an operator would write `node <bin>`. */
export function nodeEntry(script: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { command: process.execPath, args: [script], ...extra };
}

/** Writes an agent config file (`{ ...options, mcpServers }`) as JSON; returns its path. */
export async function writeAgentConfig(path: string, mcpServers: Record<string, unknown>, options: Record<string, unknown> = {}): Promise<string> {
  await writeFile(path, `${JSON.stringify({ ...options, mcpServers }, null, 2)}\n`);
  return path;
}

/** The grpc.health.v1 status of one service of an agent (`''` is the node). */
export async function grpcStatus(address: string, service: string): Promise<string> {
  const probe = new GrpcHealthProbe(`${address}/${service}`);
  try {
    const r = await probe.check(5000);
    if (r.status === 'passing') return 'SERVING';
    return /serving status: (\w+)/.exec(r.output)?.[1] ?? r.output;
  } finally {
    probe.close();
  }
}

/** The example bearer-token server as its own process, which tests stop and start again on the same port. */
export class BearerServerProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly exited: Promise<void>,
  ) {}

  /** Starts it with `token` on `port` (0: any free); resolves once it listens. */
  static async start(token: string, port = 0): Promise<BearerServerProcess> {
    const child = spawn(process.execPath, [BEARER_SERVER_BIN, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BEARER_SERVER_TOKEN: token } });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"remote ready"'));
        if (line) resolve(String((JSON.parse(line) as { url: string }).url));
      });
      void exited.then(() => reject(new Error(`bearer server exited before it listened: ${err}`)));
    });
    return new BearerServerProcess(child, url, exited);
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Kills it (SIGKILL: a remote that vanishes) and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Whether a process with this pid exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
