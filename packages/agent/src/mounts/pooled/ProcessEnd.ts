import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { PipeEnd } from '../pipe/PipeBridge.js';
import type { StdioProcess } from '../stdio/StdioProcess.js';

/** A stdio process given to one client session, as the end of its pipe. */
export class ProcessEnd implements PipeEnd {
  readonly ended: Promise<string>;
  /** The agent stopped the process (its session ended); false when it exited by itself. */
  stoppedByAgent = false;
  /** Epoch ms of the first message the process wrote (it was serving from then on). */
  firstMessageAt: number | undefined;

  constructor(readonly process: StdioProcess) {
    this.ended = process.exited.then(() => (this.stoppedByAgent ? 'the session ended' : `process ${process.pid ?? '?'} exited`));
  }

  /** How long the process served its session (0 if it never answered), ms. */
  get servedMs(): number {
    return this.firstMessageAt === undefined ? 0 : Date.now() - this.firstMessageAt;
  }

  send(message: JSONRPCMessage): Promise<void> {
    return this.process.send(message);
  }

  onMessage(handler: (message: JSONRPCMessage) => void): void {
    this.process.onMessage((m) => {
      this.firstMessageAt ??= Date.now();
      handler(m);
    });
  }

  async close(): Promise<void> {
    if (this.process.alive) this.stoppedByAgent = true;
    await this.process.stop();
  }
}
