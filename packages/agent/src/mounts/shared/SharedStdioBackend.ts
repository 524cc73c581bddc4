import type { Logger } from '@flotilla/telemetry';
import {
  InitializeResultSchema,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type InitializeResult,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedStdioSpec } from '../MountSpecs.js';
import { RestartBackoff } from '../stdio/RestartBackoff.js';
import { StdioProcess } from '../stdio/StdioProcess.js';

/** What the backend tells its owner. */
export interface SharedBackendEvents {
  /** A process started and answered `initialize` (after every restart). */
  ready(result: InitializeResult): void;
  /** The process is gone; everything in flight on it is lost. */
  down(reason: string): void;
  /** A message the ready process wrote (anything but the agent's own handshake). */
  message(message: JSONRPCMessage): void;
}

/** What {@link SharedStdioBackend} needs. */
export interface SharedStdioBackendDeps {
  readonly spec: ResolvedStdioSpec;
  readonly logger: Logger;
  /** How the agent introduces itself in `initialize`. */
  readonly clientInfo: { name: string; version: string };
  readonly events: SharedBackendEvents;
}

type BackendState = 'idle' | 'starting' | 'ready' | 'waiting' | 'stopped';

/** The agent's own pending `initialize` on a starting process. */
interface Handshake {
  readonly id: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/**
 * The one process of a `shared` stdio mount, kept running: the agent starts it, opens the MCP session
 * itself (`initialize` declaring no client capabilities, so the server never asks for roots, sampling or
 * elicitation, which one client could not answer for all), and restarts it with exponential backoff
 * when it exits or fails to start ({@link RestartBackoff}).
 */
export class SharedStdioBackend {
  private state: BackendState = 'idle';
  private process: StdioProcess | undefined;
  private handshake: Handshake | undefined;
  private result: InitializeResult | undefined;
  private readonly backoff: RestartBackoff;
  private timer: NodeJS.Timeout | undefined;
  private readyAt = 0;
  private starts = 0;
  private nextStartAt: number | undefined;
  private lastExit: string | undefined;

  constructor(private readonly deps: SharedStdioBackendDeps) {
    this.backoff = new RestartBackoff(deps.spec.restart);
  }

  /** The server's `initialize` result from the running process. */
  get initializeResult(): InitializeResult | undefined {
    return this.state === 'ready' ? this.result : undefined;
  }

  /** Why requests cannot go to the process now; undefined when it is ready. */
  unavailable(): string | undefined {
    switch (this.state) {
      case 'ready':
        return undefined;
      case 'idle':
      case 'starting':
        return 'its process is starting';
      case 'waiting': {
        const inMs = Math.max(0, (this.nextStartAt ?? Date.now()) - Date.now());
        return `its process failed ${this.backoff.consecutiveFailures} time(s) in a row (${this.lastExit ?? 'exited'}); next start in ${inMs} ms`;
      }
      case 'stopped':
        return 'it is stopped';
    }
  }

  /** Details for the agent's health report. */
  status(): Record<string, unknown> {
    return { state: this.state, pid: this.process?.alive ? this.process.pid : undefined, starts: this.starts, consecutiveFailures: this.backoff.consecutiveFailures, lastExit: this.lastExit };
  }

  /** Starts the process; resolves once the first attempt is ready or has failed (restarts go on). */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    await this.run();
  }

  /** Stopped for good (the state can change across awaits, which type narrowing does not see). */
  private get stopped(): boolean {
    return this.state === 'stopped';
  }

  /** Writes a message to the ready process; rejects when there is none. */
  send(message: JSONRPCMessage): Promise<void> {
    const p = this.process;
    if (this.state !== 'ready' || !p) return Promise.reject(new Error(this.unavailable() ?? 'not ready'));
    return p.send(message);
  }

  /** Stops the process for good (no restart) and waits until it is gone. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasReady = this.state === 'ready';
    this.state = 'stopped';
    clearTimeout(this.timer);
    const p = this.process;
    if (!p) return;
    await p.stop();
    this.deps.logger.info({ pid: p.pid }, 'stdio server process stopped');
    if (wasReady) this.deps.events.down('the mount stopped');
  }

  /** One start: spawn, handshake; on failure the next start is scheduled. */
  private async run(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'starting';
    this.starts += 1;
    const proc = new StdioProcess({ spec: this.deps.spec, logger: this.deps.logger });
    this.process = proc;
    proc.onMessage((m) => this.receive(proc, m));
    const t0 = performance.now();
    try {
      await proc.start();
      this.result = await this.openSession(proc);
    } catch (err) {
      if (this.stopped) return;
      this.lastExit = err instanceof Error ? err.message : String(err);
      await proc.stop();
      this.scheduleStart(0, 'stdio server failed to start');
      return;
    }
    if (this.stopped) return;
    this.state = 'ready';
    this.readyAt = Date.now();
    const r = this.result;
    this.deps.logger.info({ pid: proc.pid, startMs: Math.round(performance.now() - t0), protocolVersion: r.protocolVersion, serverInfo: r.serverInfo, starts: this.starts }, 'stdio server process answered initialize');
    void proc.exited.then(() => this.exited(proc));
    this.deps.events.ready(r);
  }

  private exited(proc: StdioProcess): void {
    if (this.process !== proc || this.state !== 'ready') return;
    const servedMs = Date.now() - this.readyAt;
    this.lastExit = `process ${proc.pid ?? '?'} exited after serving ${servedMs} ms`;
    this.state = 'waiting';
    this.deps.events.down(this.lastExit);
    this.scheduleStart(servedMs, 'stdio server process exited');
  }

  private scheduleStart(servedMs: number, what: string): void {
    if (this.state === 'stopped') return;
    this.state = 'waiting';
    const delay = this.backoff.next(servedMs);
    this.nextStartAt = Date.now() + delay;
    this.deps.logger.warn({ reason: this.lastExit, restartInMs: delay, consecutiveFailures: this.backoff.consecutiveFailures, starts: this.starts }, `${what}; restarting`);
    this.timer = setTimeout(() => void this.run(), delay);
    this.timer.unref();
  }

  /** The agent's own `initialize` + `initialized`, bounded by the spec's startup timeout. */
  private async openSession(proc: StdioProcess): Promise<InitializeResult> {
    const id = `flotilla-initialize-${this.starts}`;
    const answered = new Promise<unknown>((resolve, reject) => {
      this.handshake = { id, resolve, reject };
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to initialize within ${this.deps.spec.startupTimeoutMs} ms`)), this.deps.spec.startupTimeoutMs);
    });
    const exited = proc.exited.then(() => {
      throw new Error(`process ${proc.pid ?? '?'} exited before answering initialize`);
    });
    try {
      await proc.send({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: this.deps.clientInfo } });
      const raw = await Promise.race([answered, timeout, exited]);
      const parsed = InitializeResultSchema.safeParse(raw);
      if (!parsed.success) throw new Error(`invalid initialize result: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      if (!SUPPORTED_PROTOCOL_VERSIONS.includes(parsed.data.protocolVersion)) throw new Error(`unsupported protocol version ${parsed.data.protocolVersion}`);
      await proc.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      return parsed.data;
    } finally {
      clearTimeout(timer);
      exited.catch(() => {});
      this.handshake = undefined;
    }
  }

  private receive(proc: StdioProcess, message: JSONRPCMessage): void {
    if (proc !== this.process) return;
    const h = this.handshake;
    if (h && (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && message.id === h.id) {
      if (isJSONRPCErrorResponse(message)) h.reject(new Error(`initialize failed: ${message.error.message} (${message.error.code})`));
      else h.resolve(message.result);
      return;
    }
    if (this.state !== 'ready') {
      // Before the session is open only pings deserve an answer.
      if (isJSONRPCRequest(message) && message.method === 'ping') void proc.send({ jsonrpc: '2.0', id: message.id, result: {} }).catch(() => {});
      return;
    }
    this.deps.events.message(message);
  }
}
