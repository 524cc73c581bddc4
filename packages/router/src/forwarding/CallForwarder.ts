import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FlotillaErrorCode, META_CALL_ID, META_DEADLINE, META_TRACEPARENT, META_TRACESTATE } from '@flotilla/protocol';
import { injectTraceMeta, type Logger } from '@flotilla/telemetry';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { ClientRequest, Progress } from '@modelcontextprotocol/sdk/types.js';
import { context, type Context } from '@opentelemetry/api';
import type { Balancer } from '../balancer/Balancer.js';
import type { ReplicaDirectory } from '../discovery/ReplicaDirectory.js';
import type { ForwardTarget, Unavailability } from '../endpoint/ForwardTarget.js';
import { toolKeyOf } from '../endpoint/NodeEndpoint.js';
import { CallCancelledError, UpstreamFailure } from '../endpoint/UpstreamFailure.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { deadlineExceeded, nodeFailed, noReplica, type FailedAttempt } from '../errors/routingErrors.js';
import type { ActiveCall, CallDirectory } from './CallDirectory.js';
import { ClientDisconnectedError, type ClientCallContext } from './ClientCallContext.js';
import type { AttemptRecord, AttemptResult, CallObserver, CallOutcome } from './CallObserver.js';
import { CallTrace } from './CallTrace.js';
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
export interface ForwardRequest<S extends AnySchema> {
  /** Client-facing name (namespaced tool or prompt, or URI): used in errors, logs and as the balancer key. */
  target: string;
  server: string;
  replicas: readonly string[];
  /** The request as the upstream server must see it (upstream names); `_meta` is filled in here. */
  request: ClientRequest;
  resultSchema: S;
  /** Safe to run again elsewhere after a node accepted it and failed (read-only / idempotent). */
  retryAfterAcceptance: boolean;
  client: ClientCallContext;
}

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

/** One attempt of a call on one node, running or settled. */
interface Attempt<T> {
  readonly endpoint: ForwardTarget;
  readonly hedge: boolean;
  /** 1-based position among the call's attempts. */
  readonly number: number;
  /** Cancels this attempt alone (the loser of a hedge, or a copy still running when the call ends), recording it as cancelled. */
  readonly abandon: (why: string) => void;
  /** Settles once, never rejects. */
  readonly settled: Promise<Settled<T>>;
}

/** A failed attempt the next one follows. */
interface PreviousAttempt {
  readonly failure: UpstreamFailure;
  readonly number: number;
}

type Settled<T> = { readonly attempt: Attempt<T>; readonly ok: true; readonly result: T } | { readonly attempt: Attempt<T>; readonly ok: false; readonly error: unknown };

/** Why a copy this call cancelled itself ended (the loser of a hedge race, typically). */
const CANCELLED_BY_THE_CALL = (): CallCancelledError => new CallCancelledError('cancelled: the call no longer needs this copy');

/**
 * Places calls on replicas: the balancer picks among usable replicas (node and per-tool breakers closed,
 * not draining, not tried yet for this call), the node's guard runs the call, and failures are retried on
 * another replica when that is safe: always when the node never started the call (refused, busy,
 * draining, breaker open, node gone), after acceptance only for read-only or idempotent work; others get
 * a NodeFailed error naming the node. Attempts are bounded in number and in time
 * ({@link ForwardingPolicy}). Read-only tool calls may be hedged.
 *
 * Progress goes back to the client under the client's own token, only ever increasing (a retry starts
 * counting again); cancellation goes upstream through the call's signal. Each call is a server span
 * (continuing the client's trace) with one dispatch span per attempt, whose context the node gets.
 */
export class CallForwarder {
  private readonly policy: Required<ForwardingPolicy>;

  constructor(
    private readonly directory: ReplicaDirectory,
    private readonly balancer: Balancer,
    private readonly calls: CallDirectory,
    private readonly callTimeoutMs: number,
    private readonly logger: Logger,
    private readonly observer?: CallObserver,
    policy: ForwardingPolicy = {},
  ) {
    this.policy = { ...DEFAULT_FORWARDING_POLICY, ...policy };
    if (observer?.toolBreakerTransition) {
      directory.onToolBreakerChange?.((nodeId, tool, to) => observer.toolBreakerTransition?.(nodeId, tool, to));
    }
  }

  async forward<S extends AnySchema>(req: ForwardRequest<S>): Promise<SchemaOutput<S>> {
    const started = performance.now();
    const callId = randomUUID();
    const isToolCall = req.request.method === 'tools/call';
    const tool = toolKeyOf(req.server, req.request);
    const clientMeta = req.client.meta ?? {};
    const deadline = typeof clientMeta[META_DEADLINE] === 'number' ? (clientMeta[META_DEADLINE] as number) : undefined;
    const callTrace = new CallTrace(
      { method: req.request.method, target: req.target, server: req.server, callId, sessionId: req.client.sessionId, requestId: req.client.requestId, clientMeta },
      tool,
    );
    const active: ActiveCall = { callId, target: req.target, client: req.client };
    this.calls.add(active);
    const failures: FailedAttempt[] = [];
    /** Every attempt that ended, for the call's record. */
    const ended: AttemptRecord[] = [];
    const tried = new Set<string>();
    // Progress must only increase for the client; a retry on another replica starts counting again.
    const progress = { last: -Infinity };
    let outcome: CallOutcome = 'error';
    /** The node whose answer the client got, if any. */
    let answeredBy: string | undefined;
    /** What the client was told went wrong. */
    let errorText: string | undefined;
    const hedgeable = this.policy.hedgeReadOnly && isToolCall && tool !== undefined && this.directory.isReadOnlyTool?.(req.target) === true;

    const onprogress =
      req.client.progressToken === undefined
        ? undefined
        : (p: Progress): void => {
            if (p.progress <= progress.last) return;
            progress.last = p.progress;
            this.sendProgress(req.client, p);
          };

    /** Starts an attempt on the replica the balancer picks among those not tried yet, if any. */
    const startAttempt = (hedge: boolean, previous: PreviousAttempt | undefined): Attempt<SchemaOutput<S>> | undefined => {
      const timeoutMs = deadline === undefined ? this.callTimeoutMs : Math.min(this.callTimeoutMs, deadline - Date.now());
      if (timeoutMs <= 0) throw deadlineExceeded(req.target, active.nodeId);
      const candidates: ForwardTarget[] = [];
      const excluded: Array<{ nodeId: string; why: Unavailability }> = [];
      for (const id of req.replicas) {
        if (tried.has(id)) continue;
        const endpoint = this.directory.endpoint(id);
        const why = endpoint ? endpoint.unavailability(req.server, tool) : 'left';
        if (why === undefined) candidates.push(endpoint!);
        else excluded.push({ nodeId: id, why });
      }
      callTrace.skipped(excluded);
      const placement = this.balancer.pick(candidates, { key: req.target, ...(tool !== undefined ? { tool } : {}) });
      if (!placement) return undefined;
      if (previous) {
        // Told once the next attempt has a node: a failure with no replica left ends the call instead.
        const kind = previous.failure.kind === 'refused' ? 'retry' : 'failover';
        const reason = previous.failure.category;
        callTrace.anotherAttempt(kind, { nodeId: previous.failure.nodeId, attempt: previous.number, reason, message: previous.failure.reason });
        if (isToolCall) this.observer?.[kind]?.(req.target, reason);
      }
      const endpoint = placement.replica;
      tried.add(endpoint.nodeId);
      active.nodeId = endpoint.nodeId;
      const dispatch = callTrace.dispatch({
        nodeId: endpoint.nodeId,
        attempt: tried.size,
        ...(endpoint.address ? { address: endpoint.address } : {}),
        strategy: this.balancer.name,
        reason: placement.reason,
        excluded,
        hedge,
      });
      const request = this.upstreamRequest(req.request, clientMeta, callId, dispatch.context);
      const controller = new AbortController();
      const signal = AbortSignal.any([req.client.signal, controller.signal]);
      let recorded = false;
      /** Ends the attempt's span and records how it ended, once. */
      const settle = (r: AttemptResult, err?: unknown): void => {
        if (recorded) return;
        recorded = true;
        dispatch.end(r, err);
        ended.push({ nodeId: endpoint.nodeId, result: r });
        if (isToolCall) this.observer?.attempt?.(req.target, endpoint.nodeId, r);
      };
      const attempt: Attempt<SchemaOutput<S>> = {
        endpoint,
        hedge,
        number: tried.size,
        abandon: (why) => {
          // Recorded now, while the call is still open; the copy's own unwinding may come after its answer.
          const reason = new CallCancelledError(why);
          settle('cancelled', reason);
          controller.abort(reason);
        },
        settled: endpoint
          .call(req.server, request, req.resultSchema, {
            callId,
            signal,
            timeoutMs,
            ...(deadline !== undefined ? { deadlineAt: deadline } : {}),
            ...(onprogress ? { onprogress } : {}),
            ondequeued: (waitMs) => dispatch.dequeued(waitMs),
          })
          .then(
            (result): Settled<SchemaOutput<S>> => {
              settle(isToolError(result) ? 'tool_error' : 'ok');
              return { attempt, ok: true, result };
            },
            (error: unknown): Settled<SchemaOutput<S>> => {
              // A copy cancelled because the other one won is a cancellation, whatever the SDK threw.
              const err = controller.signal.aborted && !req.client.signal.aborted ? CANCELLED_BY_THE_CALL() : error;
              settle(attemptResultOf(err), err);
              return { attempt, ok: false, error: err };
            },
          ),
      };
      return attempt;
    };

    // The call's span is active while it runs, so every log line written for it carries its trace ids.
    const place = async (): Promise<SchemaOutput<S>> => {
      const running = new Set<Attempt<SchemaOutput<S>>>();
      const cancelOthers = (why: string): void => {
        for (const a of running) a.abandon(why);
        running.clear();
      };
      let previous: PreviousAttempt | undefined;
      let firstFailureAt: number | undefined;
      let hedged = false;
      for (;;) {
        if (running.size === 0) {
          if (req.client.signal.aborted) throw new CallCancelledError('cancelled by the client');
          if (tried.size >= this.policy.maxAttempts) break;
          if (firstFailureAt !== undefined && Date.now() - firstFailureAt > this.policy.retryWindowMs) break;
          const attempt = startAttempt(false, previous);
          if (!attempt) break;
          running.add(attempt);
        }
        const primary = running.size === 1 ? [...running][0]! : undefined;
        const hedgeAfterMs =
          hedgeable && !hedged && primary && !primary.hedge && tried.size < this.policy.maxAttempts ? primary.endpoint.latencyP95Ms(tool!) : undefined;
        const next = await firstOf([...running].map((a) => a.settled), hedgeAfterMs);
        if (next === 'timer') {
          hedged = true;
          let hedge: Attempt<SchemaOutput<S>> | undefined;
          try {
            hedge = startAttempt(true, undefined);
          } catch (err) {
            // The deadline passed: the first copy's own deadline ends it.
            if (!(err instanceof JsonRpcError && err.code === FlotillaErrorCode.DeadlineExceeded)) throw err;
          }
          if (hedge) {
            this.logger.debug({ callId, target: req.target, first: primary!.endpoint.nodeId, second: hedge.endpoint.nodeId, afterMs: hedgeAfterMs }, 'hedging a read-only call');
            callTrace.hedged(hedge.endpoint.nodeId, primary!.endpoint.nodeId, hedgeAfterMs!);
            this.observer?.hedged?.(req.target, hedge.endpoint.nodeId);
            running.add(hedge);
          }
          continue;
        }
        running.delete(next.attempt);
        const nodeId = next.attempt.endpoint.nodeId;
        if (next.ok) {
          cancelOthers('another replica answered first');
          outcome = isToolError(next.result) ? 'tool_error' : 'ok';
          answeredBy = nodeId;
          if (outcome === 'tool_error') errorText = toolErrorText(next.result);
          return next.result;
        }
        const err = next.error;
        if (err instanceof CallCancelledError) {
          if (req.client.signal.aborted) {
            cancelOthers('cancelled by the client');
            throw err;
          }
          continue; // a copy this call cancelled itself
        }
        if (!(err instanceof UpstreamFailure)) {
          cancelOthers('the call ended on another replica');
          if (err instanceof JsonRpcError) answeredBy = nodeId; // the server's own error answer
          throw err;
        }
        failures.push({ nodeId: err.nodeId, reason: err.reason });
        callTrace.attemptFailed({ nodeId: err.nodeId, attempt: next.attempt.number, reason: err.category, message: err.reason });
        firstFailureAt ??= Date.now();
        if (deadline !== undefined && Date.now() >= deadline) {
          cancelOthers('the deadline passed');
          throw deadlineExceeded(req.target, err.nodeId);
        }
        const retry = err.kind === 'refused' || req.retryAfterAcceptance;
        this.logger.warn(
          { callId, target: req.target, nodeId: err.nodeId, kind: err.kind, reason: err.reason, retry, stillRunning: running.size },
          retry ? 'call failed on a node; trying another replica' : 'call failed on a node after it was accepted',
        );
        if (!retry) {
          cancelOthers('the call ended on another replica');
          throw nodeFailed(req.target, err.nodeId, err.reason, failures);
        }
        previous = { failure: err, number: next.attempt.number };
      }
      throw noReplica(req.target, failures);
    };
    let thrown: { error: unknown } | undefined;
    try {
      return await context.with(callTrace.context, place);
    } catch (err) {
      thrown = { error: err };
      outcome = outcomeOf(err);
      errorText = err instanceof Error ? err.message : String(err);
      if (outcome === 'deadline_exceeded') callTrace.deadlineExceeded(active.nodeId);
      else if (outcome === 'cancelled') callTrace.cancelled(active.nodeId, req.client.signal.reason instanceof ClientDisconnectedError ? 'client disconnected' : 'client');
      if (!(err instanceof JsonRpcError) && !(err instanceof CallCancelledError)) {
        this.logger.error({ err, callId, target: req.target }, 'call failed unexpectedly');
      }
      throw err;
    } finally {
      this.calls.delete(callId);
      callTrace.end(outcome, answeredBy, tried.size, thrown?.error);
      const ms = performance.now() - started;
      // Inside the span's context, so the line carries the call's trace ids as well as its call id.
      context.with(callTrace.context, () =>
        this.logger.debug({ callId, method: req.request.method, target: req.target, nodeId: answeredBy, outcome, attempts: tried.size, ms: Math.round(ms * 100) / 100 }, 'call finished'),
      );
      if (isToolCall) this.observer?.finished(req.target, answeredBy, outcome, ms / 1000, { callId, traceId: callTrace.traceId, attempts: ended, error: errorText });
    }
  }

  /** The request as one attempt sends it: the client's `_meta` (minus its progress token), our call id and trace context. */
  private upstreamRequest(request: ClientRequest, clientMeta: Readonly<Record<string, unknown>>, callId: string, dispatchContext: Context): ClientRequest {
    // Trace context: the client's as-is (it stays when no OpenTelemetry SDK runs), then ours on top.
    const meta: Record<string, unknown> = { ...withoutProgressToken(clientMeta), [META_CALL_ID]: callId };
    if (typeof clientMeta[META_TRACEPARENT] === 'string') meta[META_TRACEPARENT] = clientMeta[META_TRACEPARENT];
    if (typeof clientMeta[META_TRACESTATE] === 'string') meta[META_TRACESTATE] = clientMeta[META_TRACESTATE];
    injectTraceMeta(meta, dispatchContext);
    return { ...request, params: { ...request.params, _meta: meta } } as ClientRequest;
  }

  private sendProgress(client: ClientCallContext, progress: Progress): void {
    if (client.progressToken === undefined || client.signal.aborted) return;
    client
      .sendNotification({ method: 'notifications/progress', params: { ...progress, progressToken: client.progressToken } })
      .catch((err: unknown) => this.logger.debug({ err }, 'could not forward progress to the client'));
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

function withoutProgressToken(meta: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { progressToken: _token, ...rest } = meta;
  return rest;
}
