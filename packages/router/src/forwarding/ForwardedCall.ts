import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FlotillaErrorCode, META_CALL_ID, META_DEADLINE, META_TRACEPARENT, META_TRACESTATE } from '@flotilla/protocol';
import { injectTraceMeta, type Logger } from '@flotilla/telemetry';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { context, type Context } from '@opentelemetry/api';
import type { Balancer, Placement } from '../balancer/Balancer.js';
import type { ReplicaDirectory } from '../discovery/ReplicaDirectory.js';
import type { ForwardTarget, Unavailability, UpstreamCall } from '../endpoint/ForwardTarget.js';
import { toolKeyOf } from '../endpoint/NodeEndpoint.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { deadlineExceeded, nodeFailed, noReplica, stateUnavailable, stickyNodeBusy, type FailedAttempt } from '../errors/routingErrors.js';
import { CallCancelledError, UpstreamFailure } from '../upstream/UpstreamFailure.js';
import type { AttemptRecord, AttemptResult, CallObserver, CallOutcome } from './CallObserver.js';
import { BALANCED, type CallPlacement } from './CallPlacement.js';
import { CallTrace } from './CallTrace.js';
import { ClientDisconnectedError, type ClientCallContext } from './ClientCallContext.js';
import { linkedAbort } from './linkedAbort.js';
import { toolErrorText } from './toolErrorText.js';

/** How far the forwarder goes to get a call answered. */
export interface ForwardingPolicy {
  /** Most nodes tried for one call, hedges included (default 3). */
  maxAttempts?: number;
  /**
   * No new attempt starts later than this after the call's first failed attempt, ms (default 30 s). With
   * `maxAttempts` it bounds how long a call can bounce between failing replicas; the client's deadline, if
   * any, bounds it too.
   */
  retryWindowMs?: number;
  /**
   * Send a second copy of a `readOnlyHint` tool call to another replica once the first has run longer than
   * that tool's p95 on its node (as this router measured it); the first answer wins and the other copy is
   * cancelled (default false).
   */
  hedgeReadOnly?: boolean;
}

export const DEFAULT_FORWARDING_POLICY: Required<ForwardingPolicy> = { maxAttempts: 3, retryWindowMs: 30_000, hedgeReadOnly: false };

/** One request to place on a replica. */
export interface ForwardRequest {
  /** Client-facing name (namespaced tool or prompt, or URI): used in errors, logs and as the balancer key. */
  readonly target: string;
  readonly server: string;
  readonly replicas: readonly string[];
  /** The request as the upstream server must see it (upstream names); `_meta` is filled in per attempt. */
  readonly request: UpstreamCall;
  /** Safe to run again elsewhere after a node accepted it and failed (read-only / idempotent). */
  readonly retryAfterAcceptance: boolean;
  readonly client: ClientCallContext;
  /** Where the call may go (default: balanced per call). */
  readonly placement?: CallPlacement;
  /** Told which node answered (to remember where state now lives: a task, a subscription). */
  readonly onAnswered?: (nodeId: string, result: Record<string, unknown>) => void;
}

/** What every call shares: where replicas are, how to pick one, and how far to go. */
export interface ForwardedCallDeps {
  readonly directory: ReplicaDirectory;
  readonly balancer: Balancer;
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly observer?: CallObserver;
  readonly policy: Required<ForwardingPolicy>;
}

/** Progress tokens the router makes up for calls whose client sent none start with this. */
export const ROUTER_PROGRESS_TOKEN_PREFIX = 'flotilla-call:';

/** What the client got, for spans and metrics. */
function outcomeOf(err: unknown): CallOutcome {
  if (err instanceof CallCancelledError) return 'cancelled';
  if (err instanceof JsonRpcError) {
    if (err.code === FlotillaErrorCode.NoReplica) return 'no_replica';
    if (err.code === FlotillaErrorCode.DeadlineExceeded) return 'deadline_exceeded';
  }
  return 'error';
}

function attemptResultOf(err: unknown): AttemptResult {
  if (err instanceof UpstreamFailure) return err.category;
  if (err instanceof CallCancelledError) return 'cancelled';
  return 'error';
}

const isToolError = (result: unknown): boolean => typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true;

type Settled = { readonly attempt: Attempt; readonly ok: true; readonly result: Record<string, unknown> } | { readonly attempt: Attempt; readonly ok: false; readonly error: unknown };

/** One attempt of a call on one node, running or settled. */
interface Attempt {
  readonly endpoint: ForwardTarget;
  readonly hedge: boolean;
  /** 1-based position among the call's attempts. */
  readonly number: number;
  /** Cancels this attempt alone (the loser of a hedge, or a copy still running when the call ends), recording it as cancelled. */
  readonly abandon: (why: string) => void;
  /** Settles once, never rejects. */
  readonly settled: Promise<Settled>;
}

/** A failed attempt the next one follows. */
interface PreviousAttempt {
  readonly failure: UpstreamFailure;
  readonly number: number;
}

/** Why a copy this call cancelled itself ended (the loser of a hedge race, typically). */
const CANCELLED_BY_THE_CALL = (): CallCancelledError => new CallCancelledError('cancelled: the call no longer needs this copy');

/**
 * One call through the router, from the client's request to its answer (grpc-js's `RetryingCall`): the
 * balancer picks among usable replicas (node and per-tool breakers closed, not draining, not tried yet
 * for this call), within the call's placement rule (balanced, sticky, preferred or pinned), the node's
 * guard runs the attempt on the client's own upstream session, and failures are retried on another
 * replica when that is safe: always when the node never started the call (refused, busy, draining,
 * breaker open, node gone), after acceptance only for read-only or idempotent work; others get a
 * NodeFailed error naming the node. Attempts are bounded in number and in time. Read-only tool calls may
 * be hedged.
 *
 * Progress goes back to the client under its own token, only ever increasing (a retry starts counting
 * again); cancellation goes upstream through the attempt's signal. The call is a server span (continuing
 * the client's trace) with one dispatch span per attempt, whose context the node gets.
 */
export class ForwardedCall {
  private readonly callId = randomUUID();
  private readonly startedAt = performance.now();
  private readonly isToolCall: boolean;
  private readonly tool: string | undefined;
  private readonly clientMeta: Readonly<Record<string, unknown>>;
  private readonly deadline: number | undefined;
  private readonly trace: CallTrace;
  private readonly placement: CallPlacement;
  private readonly hedgeable: boolean;
  private readonly failures: FailedAttempt[] = [];
  /** Every attempt that ended, for the call's record. */
  private readonly ended: AttemptRecord[] = [];
  private readonly tried = new Set<string>();
  private readonly running = new Set<Attempt>();
  /** Progress must only increase for the client; a retry on another replica starts counting again. */
  private lastProgress = -Infinity;
  private outcome: CallOutcome = 'error';
  /** The node whose answer the client got, if any. */
  private answeredBy: string | undefined;
  /** The node of the latest attempt. */
  private lastNodeId: string | undefined;
  /** What the client was told went wrong. */
  private errorText: string | undefined;
  private callLogger: Logger | undefined;

  constructor(
    private readonly deps: ForwardedCallDeps,
    private readonly req: ForwardRequest,
  ) {
    this.isToolCall = req.request.method === 'tools/call';
    this.tool = toolKeyOf(req.server, req.request);
    this.clientMeta = req.client.meta ?? {};
    const deadline = this.clientMeta[META_DEADLINE];
    this.deadline = typeof deadline === 'number' ? deadline : undefined;
    this.placement = req.placement ?? BALANCED;
    this.trace = new CallTrace(
      { method: req.request.method, target: req.target, server: req.server, callId: this.callId, sessionId: req.client.sessionId, requestId: req.client.requestId, clientMeta: this.clientMeta, ...(req.client.principal !== undefined ? { principal: req.client.principal } : {}) },
      this.tool,
    );
    this.hedgeable =
      deps.policy.hedgeReadOnly && this.isToolCall && this.tool !== undefined && this.placement.kind === 'balanced' && deps.directory.isReadOnlyTool?.(req.target) === true;
  }

  /** The call's log lines carry the caller's principal (front door), when there is one; made on first use. */
  private get logger(): Logger {
    const principal = this.req.client.principal;
    return (this.callLogger ??= principal !== undefined ? this.deps.logger.child({ principal }) : this.deps.logger);
  }

  /** Places the call until it is answered, fails for good, or is cancelled; the call's span is active meanwhile. */
  async run(): Promise<Record<string, unknown>> {
    let thrown: { error: unknown } | undefined;
    try {
      return await context.with(this.trace.context, () => this.place());
    } catch (err) {
      thrown = { error: err };
      this.recordFailure(err);
      throw err;
    } finally {
      this.finish(thrown?.error);
    }
  }

  private async place(): Promise<Record<string, unknown>> {
    const { policy } = this.deps;
    let previous: PreviousAttempt | undefined;
    let firstFailureAt: number | undefined;
    let hedged = false;
    for (;;) {
      if (this.running.size === 0) {
        if (this.req.client.signal.aborted) throw new CallCancelledError('cancelled by the client');
        if (this.tried.size >= policy.maxAttempts) break;
        if (firstFailureAt !== undefined && Date.now() - firstFailureAt > policy.retryWindowMs) break;
        const attempt = this.startAttempt(false, previous);
        if (!attempt) break;
        this.running.add(attempt);
      }
      const primary = this.running.size === 1 ? [...this.running][0]! : undefined;
      const hedgeAfterMs =
        this.hedgeable && !hedged && primary && !primary.hedge && this.tried.size < policy.maxAttempts ? primary.endpoint.latencyP95Ms(this.tool!) : undefined;
      const next = await firstOf([...this.running].map((a) => a.settled), hedgeAfterMs);
      if (next === 'timer') {
        hedged = true;
        this.hedge(primary!, hedgeAfterMs!);
        continue;
      }
      this.running.delete(next.attempt);
      if (next.ok) return this.answered(next.attempt, next.result);
      const failure = this.failed(next.attempt, next.error);
      if (!failure) continue; // a copy this call cancelled itself
      firstFailureAt ??= Date.now();
      previous = { failure, number: next.attempt.number };
    }
    throw this.placement.kind === 'pinned' ? stateUnavailable(this.req.target, this.placement.nodeId, this.placement.what, this.failures) : noReplica(this.req.target, this.failures);
  }

  private answered(attempt: Attempt, result: Record<string, unknown>): Record<string, unknown> {
    this.cancelOthers('another replica answered first');
    this.outcome = isToolError(result) ? 'tool_error' : 'ok';
    this.answeredBy = attempt.endpoint.nodeId;
    if (this.outcome === 'tool_error') this.errorText = toolErrorText(result);
    this.req.onAnswered?.(attempt.endpoint.nodeId, result);
    return result;
  }

  /**
   * An attempt failed: throws what the client gets when the call cannot go on, returns the failure when
   * another attempt may follow, or undefined for a copy the call cancelled itself.
   */
  private failed(attempt: Attempt, err: unknown): UpstreamFailure | undefined {
    const nodeId = attempt.endpoint.nodeId;
    if (err instanceof CallCancelledError) {
      if (!this.req.client.signal.aborted) return undefined;
      this.cancelOthers('cancelled by the client');
      throw err;
    }
    if (!(err instanceof UpstreamFailure)) {
      this.cancelOthers('the call ended on another replica');
      if (err instanceof JsonRpcError) this.answeredBy = nodeId; // the server's own error answer
      throw err;
    }
    this.failures.push({ nodeId: err.nodeId, reason: err.reason });
    this.trace.attemptFailed({ nodeId: err.nodeId, attempt: attempt.number, reason: err.category, message: err.reason });
    if (this.deadline !== undefined && Date.now() >= this.deadline) {
      this.cancelOthers('the deadline passed');
      throw deadlineExceeded(this.req.target, err.nodeId);
    }
    if (err.category === 'busy' && this.placement.kind === 'sticky' && this.placement.binding.nodeId === nodeId) {
      // A busy node has not failed: the client's session state stays where it is.
      this.cancelOthers('the call ended on another replica');
      throw stickyNodeBusy(this.req.target, nodeId, err.reason);
    }
    const retry = err.kind === 'refused' || this.req.retryAfterAcceptance;
    this.logger.warn(
      { callId: this.callId, target: this.req.target, nodeId: err.nodeId, kind: err.kind, reason: err.reason, retry, stillRunning: this.running.size },
      retry ? 'call failed on a node; trying another replica' : 'call failed on a node after it was accepted',
    );
    if (!retry) {
      this.cancelOthers('the call ended on another replica');
      throw nodeFailed(this.req.target, err.nodeId, err.reason, this.failures);
    }
    return err;
  }

  private hedge(primary: Attempt, afterMs: number): void {
    let copy: Attempt | undefined;
    try {
      copy = this.startAttempt(true, undefined);
    } catch (err) {
      // The deadline passed: the first copy's own deadline ends it.
      if (!(err instanceof JsonRpcError && err.code === FlotillaErrorCode.DeadlineExceeded)) throw err;
    }
    if (!copy) return;
    this.logger.debug({ callId: this.callId, target: this.req.target, first: primary.endpoint.nodeId, second: copy.endpoint.nodeId, afterMs }, 'hedging a read-only call');
    this.trace.hedged(copy.endpoint.nodeId, primary.endpoint.nodeId, afterMs);
    this.deps.observer?.hedged?.(this.req.target, copy.endpoint.nodeId);
    this.running.add(copy);
  }

  private cancelOthers(why: string): void {
    for (const a of this.running) a.abandon(why);
    this.running.clear();
  }

  /** Starts an attempt on the replica the placement rule and the balancer choose among those not tried yet, if any. */
  private startAttempt(hedge: boolean, previous: PreviousAttempt | undefined): Attempt | undefined {
    const timeoutMs = this.deadline === undefined ? this.deps.callTimeoutMs : Math.min(this.deps.callTimeoutMs, this.deadline - Date.now());
    if (timeoutMs <= 0) throw deadlineExceeded(this.req.target, this.lastNodeId);
    const { candidates, excluded } = this.candidates();
    this.trace.skipped(excluded);
    const placement = this.choose(candidates, excluded);
    if (!placement) return undefined;
    if (previous) this.announceAnotherAttempt(previous);
    const endpoint = placement.replica;
    this.tried.add(endpoint.nodeId);
    this.lastNodeId = endpoint.nodeId;
    return this.launch(endpoint, placement, excluded, hedge, timeoutMs);
  }

  /** Told once the next attempt has a node: a failure with no replica left ends the call instead. */
  private announceAnotherAttempt(previous: PreviousAttempt): void {
    const kind = previous.failure.kind === 'refused' ? 'retry' : 'failover';
    const reason = previous.failure.category;
    this.trace.anotherAttempt(kind, { nodeId: previous.failure.nodeId, attempt: previous.number, reason, message: previous.failure.reason });
    if (this.isToolCall) this.deps.observer?.[kind]?.(this.req.target, reason);
  }

  private candidates(): { candidates: ForwardTarget[]; excluded: Array<{ nodeId: string; why: Unavailability }> } {
    const candidates: ForwardTarget[] = [];
    const excluded: Array<{ nodeId: string; why: Unavailability }> = [];
    for (const id of this.req.replicas) {
      if (this.tried.has(id)) continue;
      const endpoint = this.deps.directory.endpoint(id);
      const why = endpoint ? endpoint.unavailability(this.req.server, this.tool) : 'left';
      if (why === undefined) candidates.push(endpoint!);
      else excluded.push({ nodeId: id, why });
    }
    return { candidates, excluded };
  }

  /** The placement rule's choice among usable candidates. */
  private choose(candidates: ForwardTarget[], excluded: ReadonlyArray<{ nodeId: string; why: Unavailability }>): Placement<ForwardTarget> | undefined {
    const rule = this.placement;
    const key = { key: this.req.target, ...(this.tool !== undefined ? { tool: this.tool } : {}) };
    switch (rule.kind) {
      case 'balanced':
        return this.deps.balancer.pick(candidates, key);
      case 'pinned': {
        const node = candidates.find((c) => c.nodeId === rule.nodeId);
        return node ? { replica: node, reason: () => `pinned: ${rule.what} lives on this node` } : undefined;
      }
      case 'preferred': {
        for (const id of rule.nodeIds) {
          const node = candidates.find((c) => c.nodeId === id);
          if (node) return { replica: node, reason: () => 'preferred: the client session has state here' };
        }
        return this.deps.balancer.pick(candidates, key);
      }
      case 'sticky':
        return this.chooseSticky(rule.binding, candidates, excluded, key);
    }
  }

  private chooseSticky(
    binding: Extract<CallPlacement, { kind: 'sticky' }>['binding'],
    candidates: ForwardTarget[],
    excluded: ReadonlyArray<{ nodeId: string; why: Unavailability }>,
    key: { key: string; tool?: string },
  ): Placement<ForwardTarget> | undefined {
    const bound = binding.nodeId;
    const node = bound === undefined ? undefined : candidates.find((c) => c.nodeId === bound);
    if (node) return { replica: node, reason: () => 'sticky affinity: the client session is bound here' };
    const picked = this.deps.balancer.pick(candidates, key);
    if (!picked) return undefined;
    let why: string | undefined;
    if (bound !== undefined) {
      const failure = [...this.failures].reverse().find((f) => f.nodeId === bound);
      why = failure?.reason ?? excluded.find((e) => e.nodeId === bound)?.why ?? 'left';
      this.trace.affinityMoved(bound, picked.replica.nodeId, why);
      this.logger.warn({ callId: this.callId, server: this.req.server, clientSession: this.req.client.sessionId, from: bound, to: picked.replica.nodeId, why }, 'sticky session moved to another node');
    }
    binding.bind(picked.replica.nodeId, why);
    return { replica: picked.replica, reason: () => (bound === undefined ? `sticky affinity: bound now (${picked.reason()})` : `sticky affinity: moved from ${bound} (${why})`) };
  }

  private launch(endpoint: ForwardTarget, placement: Placement<ForwardTarget>, excluded: ReadonlyArray<{ nodeId: string; why: Unavailability }>, hedge: boolean, timeoutMs: number): Attempt {
    const number = this.tried.size;
    const dispatch = this.trace.dispatch({
      nodeId: endpoint.nodeId,
      attempt: number,
      ...(endpoint.address ? { address: endpoint.address } : {}),
      strategy: this.deps.balancer.name,
      reason: placement.reason,
      excluded,
      hedge,
    });
    const progressToken = this.req.client.progressToken ?? `${ROUTER_PROGRESS_TOKEN_PREFIX}${this.callId}`;
    const request = this.upstreamRequest(progressToken, dispatch.context);
    // Aborted by the client's cancel (followed) or by the call (`abandon`).
    const link = linkedAbort(this.req.client.signal);
    const { controller } = link;
    const signal = controller.signal;
    let recorded = false;
    /** Ends the attempt's span and records how it ended, once. */
    const settle = (r: AttemptResult, err?: unknown): void => {
      if (recorded) return;
      recorded = true;
      link.release();
      dispatch.end(r, err);
      this.ended.push({ nodeId: endpoint.nodeId, result: r });
      if (this.isToolCall) this.deps.observer?.attempt?.(this.req.target, endpoint.nodeId, r);
    };
    const attempt: Attempt = {
      endpoint,
      hedge,
      number,
      abandon: (why) => {
        // Recorded now, while the call is still open; the copy's own unwinding may come after its answer.
        const reason = new CallCancelledError(why);
        settle('cancelled', reason);
        controller.abort(reason);
      },
      settled: endpoint
        .call(this.req.server, request, {
          callId: this.callId,
          signal,
          timeoutMs,
          progressToken,
          onprogress: (p) => this.progress(p),
          sink: this.req.client.sink,
          client: this.req.client.upstream,
          ...(this.deadline !== undefined ? { deadlineAt: this.deadline } : {}),
          ondequeued: (waitMs) => dispatch.dequeued(waitMs),
        })
        .then(
          (result): Settled => {
            settle(isToolError(result) ? 'tool_error' : 'ok');
            return { attempt, ok: true, result };
          },
          (error: unknown): Settled => {
            // A copy cancelled because the other one won is a cancellation, whatever the session threw.
            const err = controller.signal.aborted && !this.req.client.signal.aborted ? CANCELLED_BY_THE_CALL() : error;
            settle(attemptResultOf(err), err);
            return { attempt, ok: false, error: err };
          },
        ),
    };
    return attempt;
  }

  /**
   * The request as one attempt sends it: the client's `_meta` with the progress token the attempt uses, our
   * call id and trace context.
   */
  private upstreamRequest(progressToken: string | number, dispatchContext: Context): UpstreamCall {
    // Trace context: the client's as-is (it stays when no OpenTelemetry SDK runs), then ours on top.
    const meta: Record<string, unknown> = { ...this.clientMeta, progressToken, [META_CALL_ID]: this.callId };
    if (typeof this.clientMeta[META_TRACEPARENT] === 'string') meta[META_TRACEPARENT] = this.clientMeta[META_TRACEPARENT];
    if (typeof this.clientMeta[META_TRACESTATE] === 'string') meta[META_TRACESTATE] = this.clientMeta[META_TRACESTATE];
    injectTraceMeta(meta, dispatchContext);
    return { method: this.req.request.method, params: { ...this.req.request.params, _meta: meta } };
  }

  private progress(p: Progress): void {
    const client = this.req.client;
    if (client.progressToken === undefined || client.signal.aborted || p.progress <= this.lastProgress) return;
    this.lastProgress = p.progress;
    client
      .sendNotification({ method: 'notifications/progress', params: { ...p, progressToken: client.progressToken } })
      .catch((err: unknown) => this.logger.debug({ err }, 'could not forward progress to the client'));
  }

  private recordFailure(err: unknown): void {
    this.outcome = outcomeOf(err);
    this.errorText = err instanceof Error ? err.message : String(err);
    if (this.outcome === 'deadline_exceeded') this.trace.deadlineExceeded(this.lastNodeId);
    else if (this.outcome === 'cancelled') this.trace.cancelled(this.lastNodeId, this.req.client.signal.reason instanceof ClientDisconnectedError ? 'client disconnected' : 'client');
    if (!(err instanceof JsonRpcError) && !(err instanceof CallCancelledError)) {
      this.logger.error({ err, callId: this.callId, target: this.req.target }, 'call failed unexpectedly');
    }
  }

  private finish(error: unknown): void {
    this.trace.end(this.outcome, this.answeredBy, this.tried.size, error);
    const ms = performance.now() - this.startedAt;
    // Inside the span's context, so the line carries the call's trace ids as well as its call id.
    context.with(this.trace.context, () =>
      this.logger.debug(
        { callId: this.callId, method: this.req.request.method, target: this.req.target, nodeId: this.answeredBy, outcome: this.outcome, attempts: this.tried.size, ms: Math.round(ms * 100) / 100 },
        'call finished',
      ),
    );
    if (this.isToolCall) {
      this.deps.observer?.finished(this.req.target, this.answeredBy, this.outcome, ms / 1000, {
        callId: this.callId,
        traceId: this.trace.traceId,
        attempts: this.ended,
        error: this.errorText,
      });
    }
  }
}

/** The first of `settling` to settle, or `'timer'` when `timerMs` (if given) passes first. */
async function firstOf<T>(settling: Promise<T>[], timerMs: number | undefined): Promise<T | 'timer'> {
  if (timerMs === undefined) return Promise.race(settling);
  let timer: NodeJS.Timeout | undefined;
  const fired = new Promise<'timer'>((resolve) => {
    timer = setTimeout(() => resolve('timer'), Math.max(0, timerMs));
  });
  try {
    return await Promise.race([...settling, fired]);
  } finally {
    clearTimeout(timer);
  }
}
