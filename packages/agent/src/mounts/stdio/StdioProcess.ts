import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { Logger } from '@flotilla/telemetry';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedStdioSpec } from '../MountSpecs.js';

/** Longest stderr line written to the agent's log, characters (the rest is cut). */
const MAX_STDERR_LINE = 4096;

/** What {@link StdioProcess} needs. */
export interface StdioProcessDeps {
  readonly spec: ResolvedStdioSpec;
  /** Bound to the server's name. */
  readonly logger: Logger;
}

/**
 * One process of a stdio server, through the MCP SDK's `StdioClientTransport` (spawned without a shell,
 * with the spec's env over a minimal default environment; stdin/stdout carry MCP, one JSON message per
 * line). Every stderr line goes to the agent's log. Stopping ends stdin, then SIGTERM after 2 s, then
 * SIGKILL (the SDK's order).
 */
export class StdioProcess {
  readonly transport: StdioClientTransport;
  /** Resolves once the process is gone (exited, killed, or never started). */
  readonly exited: Promise<void>;
  /** Epoch ms of the spawn. */
  readonly startedAt = Date.now();
  private resolveExited!: () => void;
  private messageHandler: ((message: JSONRPCMessage) => void) | undefined;
  private pidValue: number | undefined;
  private gone = false;

  constructor(private readonly deps: StdioProcessDeps) {
    const { spec } = deps;
    this.transport = new StdioClientTransport({ command: spec.command, args: spec.args, env: spec.env, stderr: 'pipe', ...(spec.cwd ? { cwd: spec.cwd } : {}) });
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    this.transport.onmessage = (message) => this.messageHandler?.(message);
    this.transport.onclose = () => this.markGone();
    this.transport.onerror = (err) => this.deps.logger.warn({ err: { message: err.message }, pid: this.pidValue }, 'stdio server sent something that is not MCP, or its pipe failed');
    const stderr = this.transport.stderr;
    if (stderr instanceof Readable) {
      createInterface({ input: stderr, crlfDelay: Infinity }).on('line', (line) => {
        this.deps.logger.info({ pid: this.pidValue, stderr: line.length > MAX_STDERR_LINE ? `${line.slice(0, MAX_STDERR_LINE)}…` : line }, 'stdio server stderr');
      });
    }
  }

  /** The process id, once spawned. */
  get pid(): number | undefined {
    return this.pidValue;
  }

  /** False once the process is gone. */
  get alive(): boolean {
    return !this.gone;
  }

  /** Milliseconds since the spawn. */
  get uptimeMs(): number {
    return Date.now() - this.startedAt;
  }

  /** Receives every MCP message the process writes. */
  onMessage(handler: (message: JSONRPCMessage) => void): void {
    this.messageHandler = handler;
  }

  /** Spawns the process; rejects when it cannot be started (no such command, no permission). */
  async start(): Promise<void> {
    try {
      await this.transport.start();
    } catch (err) {
      this.markGone();
      const e = err as NodeJS.ErrnoException;
      throw new Error(`cannot start ${this.deps.spec.command}: ${e.code === 'ENOENT' ? 'no such command (check command and PATH)' : e.message}`, { cause: err });
    }
    this.pidValue = this.transport.pid ?? undefined;
    this.deps.logger.info({ pid: this.pidValue, command: this.deps.spec.command, sessions: this.deps.spec.sessions }, 'stdio server process started');
  }

  /** Writes one message to the process; rejects when it is gone. */
  send(message: JSONRPCMessage): Promise<void> {
    if (this.gone) return Promise.reject(new Error('the process has exited'));
    return this.transport.send(message);
  }

  /** Stops the process (stdin closed, then SIGTERM, then SIGKILL) and waits until it is gone. */
  async stop(): Promise<void> {
    if (!this.gone) await this.transport.close().catch(() => {});
    await this.exited;
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.resolveExited();
  }
}
