import { AsyncLocalStorage } from 'node:async_hooks';
import type { AttemptResult, CallOutcome } from '../../forwarding/CallObserver.js';

/** One attempt of a call on a node, as the dashboard lists it. */
export interface AttemptFacts {
  readonly nodeId: string;
  readonly result: AttemptResult;
}

/**
 * What the ops side learns about one forwarded tool call while it runs. Pieces arrive from different
 * places (the forwarder's observer callbacks, the call directory, the forwarder's answer), so they are
 * gathered here and read once the call has settled.
 */
export interface CallFacts {
  /** Client-facing (namespaced) tool name. */
  readonly tool: string;
  /** The router's call id (`_meta["flotilla/callId"]`), once the forwarder registered the call. */
  callId?: string;
  /** Trace of the call: the router's server span when tracing is on, else the client's `traceparent`. */
  traceId?: string;
  attempts: AttemptFacts[];
  /** Set by the observer's `finished` callback. */
  finished?: { nodeId: string | undefined; outcome: CallOutcome; seconds: number };
  /** What the client was told went wrong (error message, or the text of a tool's error result). */
  error?: string;
}

/**
 * Per-call storage that follows a forwarded call through its awaits. {@link CallForwarder} calls its
 * observer without a call id or trace id; running each call inside a scope lets observers add those
 * facts to the call they belong to, even when many calls of the same tool interleave.
 */
export class CallScope {
  private readonly storage = new AsyncLocalStorage<CallFacts>();

  /** Runs `fn` with `facts` as the current call's facts. */
  run<T>(facts: CallFacts, fn: () => T): T {
    return this.storage.run(facts, fn);
  }

  /** The facts of the call whose code is running now, if it runs inside a scope. */
  current(): CallFacts | undefined {
    return this.storage.getStore();
  }
}
