import type { Logger } from '@flotilla/telemetry';
import type { Balancer } from '../balancer/Balancer.js';
import type { ReplicaDirectory } from '../discovery/ReplicaDirectory.js';
import type { CallObserver } from './CallObserver.js';
import { DEFAULT_FORWARDING_POLICY, ForwardedCall, type ForwardedCallDeps, type ForwardingPolicy, type ForwardRequest } from './ForwardedCall.js';

/** What a {@link CallForwarder} needs. */
export interface CallForwarderDeps {
  readonly directory: ReplicaDirectory;
  readonly balancer: Balancer;
  /** Longest time a call may go without a response or a progress notification, ms. */
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly observer?: CallObserver;
  readonly policy?: ForwardingPolicy;
}

/**
 * Places calls on replicas: each call is one {@link ForwardedCall}, which holds that call's state
 * (attempts, failures, progress, span) from the client's request to its answer.
 */
export class CallForwarder {
  private readonly shared: ForwardedCallDeps;

  constructor(deps: CallForwarderDeps) {
    this.shared = {
      directory: deps.directory,
      balancer: deps.balancer,
      callTimeoutMs: deps.callTimeoutMs,
      logger: deps.logger,
      ...(deps.observer ? { observer: deps.observer } : {}),
      policy: { ...DEFAULT_FORWARDING_POLICY, ...deps.policy },
    };
    const observer = deps.observer;
    if (observer?.toolBreakerTransition) {
      deps.directory.onToolBreakerChange?.((nodeId, tool, to) => observer.toolBreakerTransition?.(nodeId, tool, to));
    }
  }

  /** Places one call; resolves with the server's result, untouched, or rejects with what the client gets. */
  forward(req: ForwardRequest): Promise<Record<string, unknown>> {
    return new ForwardedCall(this.shared, req).run();
  }
}

export { DEFAULT_FORWARDING_POLICY, type ForwardingPolicy, type ForwardRequest } from './ForwardedCall.js';
