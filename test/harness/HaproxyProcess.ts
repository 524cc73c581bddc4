import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './freePort.js';

/** A backend server of the load balancer: host:port of a router. */
export interface Backend {
  readonly name: string;
  readonly port: number;
}

/**
 * Debian's HAProxy as a per-request HTTP load balancer in front of router replicas, on a free loopback
 * port, with its config in a temp dir. Each request may go to any replica (no stickiness); a replica that
 * fails its `/healthz` check leaves the rotation, and a request that cannot connect is sent to another.
 */
export class HaproxyProcess {
  private child: ChildProcess | undefined;
  private stderr = '';

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** The load balancer's MCP endpoint. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  static async start(backends: readonly Backend[]): Promise<HaproxyProcess> {
    return HaproxyProcess.startOn(await freePort(), backends);
  }

  /** Starts on a given port (routers must know the load balancer's host name before it starts). */
  static async startOn(port: number, backends: readonly Backend[]): Promise<HaproxyProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-haproxy-'));
    const lb = new HaproxyProcess(port, dir);
    await writeFile(join(dir, 'haproxy.cfg'), config(lb.port, backends));
    await lb.spawn();
    return lb;
  }

  private async spawn(): Promise<void> {
    const child = spawn(haproxyBinary(), ['-db', '-f', join(this.dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`haproxy exited (${code}) before it was ready: ${this.stderr}`))));
    exited.catch(() => {});
    await Promise.race([waitForPort(this.port, 10_000), exited]);
  }

  /** What HAProxy printed lately (server state changes among it), for assertion messages. */
  get messages(): string {
    return this.stderr;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The config: what deploy/haproxy/haproxy.cfg shows, with test ports and faster health checks. */
function config(port: number, backends: readonly Backend[]): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 2s',
    '  timeout client 10m',
    '  timeout server 10m',
    '  timeout http-keep-alive 30s',
    // Without it a check times out after `inter` (300 ms here): a loaded machine would take healthy routers out.
    '  timeout check 2s',
    '  retries 3',
    '  option redispatch',
    // A router answers headers before it forwards anything: a request it closed without a byte never ran.
    '  retry-on conn-failure empty-response',
    'frontend mcp',
    `  bind 127.0.0.1:${port}`,
    '  default_backend routers',
    'backend routers',
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  http-check expect status 200',
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check inter 300 fall 2 rise 1`),
    '',
  ].join('\n');
}

/** Debian installs haproxy in /usr/sbin, which is not on every user's PATH; FLOTILLA_HAPROXY names another binary. */
export function haproxyBinary(): string {
  if (process.env.FLOTILLA_HAPROXY) return process.env.FLOTILLA_HAPROXY;
  return existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}
