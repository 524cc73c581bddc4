import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './freePort.js';

/** Where a configured server listens and keeps its store, for a config builder. */
export interface NatsServerPlace {
  port: number;
  storeDir: string;
}

/** Options of {@link NatsServerProcess.start}. */
export interface NatsServerOptions {
  /**
   * A nats-server configuration (accounts, users, nkeys, permissions, TLS) built for the place the server
   * gets; it must `listen` on `127.0.0.1:<port>` and keep JetStream in `storeDir`. Without it: anonymous
   * access, JetStream on.
   */
  config?: (place: NatsServerPlace) => string;
  /** URL scheme clients use (`tls` for a TLS-only server). */
  scheme?: 'nats' | 'tls';
}

/** A real nats-server (JetStream on) on a free loopback port, with its store in a temp dir. For tests. */
export class NatsServerProcess {
  private child: ChildProcess | undefined;
  private configFile: string | undefined;
  private constructor(readonly port: number, readonly storeDir: string, private readonly options: NatsServerOptions = {}) {}

  /** URL clients connect to. */
  get url(): string {
    return `${this.options.scheme ?? 'nats'}://127.0.0.1:${this.port}`;
  }

  /** What the server logged on stderr lately (permission violations, auth errors), for tests to read. */
  get log(): string {
    return this.stderrLog;
  }

  private stderrLog = '';

  /** Starts a fresh server; resolves once it accepts connections. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServerProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-nats-'));
    const server = new NatsServerProcess(await freePort(), dir, options);
    if (options.config) {
      server.configFile = join(dir, 'nats-server.conf');
      await writeFile(server.configFile, options.config({ port: server.port, storeDir: join(dir, 'js') }), { mode: 0o600 });
    }
    await server.spawn();
    return server;
  }

  private async spawn(): Promise<void> {
    const args = this.configFile ? ['-c', this.configFile] : ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir];
    const child = spawn('nats-server', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      this.stderrLog = (this.stderrLog + d.toString()).slice(-200_000);
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`nats-server exited (${code}) before it was ready: ${stderr}`))),
    );
    exited.catch(() => {});
    await Promise.race([waitForPort(this.port, 10_000), exited]);
  }

  /** Stops the server (SIGTERM, then SIGKILL) and keeps its store, so `restart` resumes with the same data. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }

  /** Starts the server again on the same port and store. */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  /** Stops the server and deletes its store. */
  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.storeDir, { recursive: true, force: true });
  }
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
