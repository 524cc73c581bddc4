import type { ClientCallContext } from './ClientCallContext.js';

/** A call in flight through the router. */
export interface ActiveCall {
  readonly callId: string;
  readonly target: string;
  readonly client: ClientCallContext;
  /** Node currently running it, once placed. */
  nodeId?: string;
}

/**
 * Every call in flight, by router-assigned call id. Upstream sessions are shared by all clients, so a
 * server-to-client message (sampling, elicitation, log) is placed by the call id the agent copies into
 * its `_meta`, looked up here.
 */
export class CallDirectory {
  private readonly calls = new Map<string, ActiveCall>();

  add(call: ActiveCall): void {
    this.calls.set(call.callId, call);
  }

  get(callId: string): ActiveCall | undefined {
    return this.calls.get(callId);
  }

  delete(callId: string): void {
    this.calls.delete(callId);
  }

  get size(): number {
    return this.calls.size;
  }
}
