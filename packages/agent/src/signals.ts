import type { RunningAgent } from './Agent.js';

/** Options of {@link installSignalHandlers}. */
export interface SignalHandlerOptions {
  /** Called to end the process; default `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * SIGTERM/SIGINT drain the agent (grace period, deregister) and exit 0; a second signal stops at once.
 * A drain requested over NATS also ends the process once the agent has stopped. Returns a function that
 * removes the handlers.
 */
export function installSignalHandlers(agent: RunningAgent, options: SignalHandlerOptions = {}): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (signals === 1) void agent.drain().catch(() => exit(1));
    else void agent.stop().catch(() => exit(1));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  void agent.stopped.then(() => exit(0));
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
