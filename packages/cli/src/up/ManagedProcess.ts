import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

/** A child process started by `flotilla up`: its output goes to a log file, and we can wait for its ready line. */
export class ManagedProcess {
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  readonly exited: Promise<number | null>;

  constructor(
    readonly label: string,
    command: string,
    args: string[],
    logFile: string,
    private readonly echo: boolean,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    // Own process group: Ctrl-C reaches only `flotilla up`, which stops the children in order (agents drain
    // while NATS is still up) instead of every process getting SIGINT at once.
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, detached: true });
    this.child.stdout?.pipe(this.log, { end: false });
    this.child.stderr?.pipe(this.log, { end: false });
    if (echo) {
      this.child.stdout?.on('data', (d: Buffer) => process.stdout.write(prefixLines(label, d)));
      this.child.stderr?.on('data', (d: Buffer) => process.stderr.write(prefixLines(label, d)));
    }
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first JSON log line whose `msg` ends with " ready". */
  ready(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`${this.label} was not ready within ${timeoutMs} ms`)), timeoutMs);
      const onData = (d: Buffer): void => {
        buf += d.toString();
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const raw = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            const line = JSON.parse(raw) as Record<string, unknown>;
            if (typeof line.msg === 'string' && line.msg.endsWith(' ready')) {
              clearTimeout(timer);
              this.child.stdout?.off('data', onData);
              resolve(line);
              return;
            }
          } catch {
            // not a JSON log line
          }
        }
      };
      this.child.stdout?.on('data', onData);
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.label} exited with code ${code} before it was ready; see its log`));
      });
    });
  }

  /** Last resort when `flotilla up` itself exits unexpectedly: no orphan keeps running. */
  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.log.end();
  }
}

function prefixLines(label: string, data: Buffer): string {
  return data
    .toString()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => `[${label}] ${l}\n`)
    .join('');
}
