import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Path of the built CLI entry point. */
export const CLI_BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

/** One pino JSON log line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/**
 * A real `flotilla` process (agent, router...) for tests. Collects its JSON log lines from stdout and lets
 * a test wait for a line matching a predicate (e.g. `msg === 'agent ready'`).
 */
export class FlotillaProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess, readonly label: string) {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let line: LogLine;
        try { line = JSON.parse(raw) as LogLine; } catch { line = { msg: raw, raw: true }; }
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
        if (process.env.FLOTILLA_TEST_VERBOSE) process.stderr.write(`[${label}] ${raw}\n`);
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr.push(d.toString());
      if (process.env.FLOTILLA_TEST_VERBOSE) process.stderr.write(`[${label}!] ${d.toString()}`);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Spawns `node packages/cli/dist/bin.js <args>` (or another build's CLI, `bin`, e.g. to compare two
   * versions); `nodeArgs` go to node itself (e.g. `--cpu-prof`, which NODE_OPTIONS may not carry).
   */
  static spawn(label: string, args: string[], env: NodeJS.ProcessEnv = {}, bin: string = CLI_BIN, nodeArgs: string[] = []): FlotillaProcess {
    const child = spawn(process.execPath, [...nodeArgs, bin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Suites that test the protections pass their keys (and FLOTILLA_INSECURE: '0'); the others run
      // routers and agents open, which the processes log at start.
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', FLOTILLA_INSECURE: '1', ...env },
    });
    return new FlotillaProcess(child, label);
  }

  /** Waits for a log line; rejects if the process exits first or `timeoutMs` passes. */
  waitFor(match: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.label}: no matching log line within ${timeoutMs} ms; stderr: ${this.stderr.join('').slice(-2000)}; last lines: ${JSON.stringify(this.lines.slice(-5))}`)), timeoutMs);
      const waiter = { match, resolve: (l: LogLine) => { clearTimeout(t); resolve(l); } };
      this.waiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(t);
        reject(new Error(`${this.label} exited (${code ?? signal}) while waiting; stderr: ${this.stderr.join('').slice(-2000)}`));
      });
    });
  }

  /** Waits for the `<kind> ready` line and returns it. */
  ready(timeoutMs = 20_000): Promise<LogLine> {
    return this.waitFor((l) => typeof l.msg === 'string' && l.msg.endsWith(' ready'), timeoutMs);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}
