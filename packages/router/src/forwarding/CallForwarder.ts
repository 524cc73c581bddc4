import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FlotillaErrorCode, META_CALL_ID, META_DEADLINE, META_TRACEPARENT, META_TRACESTATE } from '@flotilla/protocol';
import { extractTraceMeta, injectTraceMeta, type Logger } from '@flotilla/telemetry';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { ClientRequest, Progress } from '@modelcontextprotocol/sdk/types.js';
import { SpanKind, SpanStatusCode, context, trace, type Span } from '@opentelemetry/api';
import type { Balancer } from '../balancer/Balancer.js';
import type { MeshDiscovery } from '../discovery/MeshDiscovery.js';
import { CallCancelledError, UpstreamFailure } from '../endpoint/UpstreamFailure.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import { deadlineExceeded, nodeFailed, noReplica, type FailedAttempt } from '../errors/routingErrors.js';
import type { ActiveCall, CallDirectory } from './CallDirectory.js';
import type { ClientCallContext } from './ClientCallContext.js';
import type { AttemptResult, CallObserver, CallOutcome } from './CallObserver.js';

/** At most this many nodes are tried for one call. */
const MAX_ATTEMPTS = 3;

const tracer = trace.getTracer('@flotilla/router');

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

/**
 * Places calls on replicas: the balancer picks among usable replicas, the node's guard runs the call, and
 * failures are retried on another replica when that is safe: always when the node never started the
 * call, after acceptance only for read-only or idempotent work. Progress goes back to the client under
 * the client's own token; cancellation goes upstream through the call's signal. Each call is a server
 * span (continuing the client's trace) with one dispatch span per attempt, whose context the node gets.
 */
export class CallForwarder {
  constructor(
    private readonly discovery: MeshDiscovery,
    private readonly balancer: Balancer,
    private readonly calls: CallDirectory,
    private readonly callTimeoutMs: number,
    private readonly logger: Logger,
    private readonly observer?: CallObserver,
  ) {}

  async forward<S extends AnySchema>(req: ForwardRequest<S>): Promise<SchemaOutput<S>> {
    const started = performance.now();
    const callId = randomUUID();
    const isToolCall = req.request.method === 'tools/call';
    const clientMeta = req.client.meta ?? {};
    const deadline = typeof clientMeta[META_DEADLINE] === 'number' ? (clientMeta[META_DEADLINE] as number) : undefined;
    const parent = extractTraceMeta({ ...clientMeta });
    const span = tracer.startSpan(
      `${req.request.method} ${req.target}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'mcp.method.name': req.request.method,
          ...(isToolCall ? { 'mcp.tool.name': req.target } : {}),
          'mcp.server': req.server,
          'flotilla.call_id': callId,
        },
      },
      parent,
    );
    const active: ActiveCall = { callId, target: req.target, client: req.client };
    this.calls.add(active);
    const attempts: FailedAttempt[] = [];
    const tried = new Set<string>();
    // Progress must only increase for the client; a retry on another replica starts counting again.
    const progress = { last: -Infinity };
    let outcome: CallOutcome = 'error';
    /** The node whose answer the client got, if any. */
    let answeredBy: string | undefined;
    // The call's span is active while it runs, so every log line written for it carries its trace ids.
    const place = async (): Promise<SchemaOutput<S>> => {
      let previous: UpstreamFailure | undefined;
      while (attempts.length < MAX_ATTEMPTS) {
        if (req.client.signal.aborted) throw new CallCancelledError('cancelled by the client');
        const timeoutMs = deadline === undefined ? this.callTimeoutMs : Math.min(this.callTimeoutMs, deadline - Date.now());
        if (timeoutMs <= 0) throw deadlineExceeded(req.target, active.nodeId);
        const candidates = req.replicas
          .filter((id) => !tried.has(id))
          .map((id) => this.discovery.endpoint(id))
          .filter((e): e is NonNullable<typeof e> => e !== undefined && e.canServe(req.server));
        const endpoint = this.balancer.pick(candidates, { key: req.target });
        if (!endpoint) break;
        if (previous && isToolCall) {
          if (previous.kind === 'refused') this.observer?.retry(req.target, previous.category);
          else this.observer?.failover(req.target, previous.category);
        }
        tried.add(endpoint.nodeId);
        active.nodeId = endpoint.nodeId;
        span.setAttribute('flotilla.node_id', endpoint.nodeId);

        const dispatch = tracer.startSpan(
          `dispatch ${req.target}`,
          { kind: SpanKind.CLIENT, attributes: { 'flotilla.node_id': endpoint.nodeId, 'flotilla.attempt': attempts.length + 1, 'flotilla.call_id': callId } },
          trace.setSpan(parent, span),
        );
        // Trace context: the client's as-is (it stays when no OpenTelemetry SDK runs), then ours on top.
        const meta: Record<string, unknown> = { ...withoutProgressToken(clientMeta), [META_CALL_ID]: callId };
        if (typeof clientMeta[META_TRACEPARENT] === 'string') meta[META_TRACEPARENT] = clientMeta[META_TRACEPARENT];
        if (typeof clientMeta[META_TRACESTATE] === 'string') meta[META_TRACESTATE] = clientMeta[META_TRACESTATE];
        injectTraceMeta(meta, trace.setSpan(parent, dispatch));
        const request = { ...req.request, params: { ...req.request.params, _meta: meta } } as ClientRequest;

        try {
          const result = await endpoint.call(req.server, request, req.resultSchema, {
            callId,
            signal: req.client.signal,
            timeoutMs,
            ...(deadline !== undefined ? { deadlineAt: deadline } : {}),
            onprogress:
              req.client.progressToken === undefined
                ? undefined
                : (p) => {
                    if (p.progress <= progress.last) return;
                    progress.last = p.progress;
                    this.sendProgress(req.client, p);
                  },
          });
          const result_ = isToolError(result) ? 'tool_error' : 'ok';
          endAttempt(dispatch, result_);
          if (isToolCall) this.observer?.attempt(req.target, endpoint.nodeId, result_);
          outcome = result_;
          answeredBy = endpoint.nodeId;
          return result;
        } catch (err) {
          const result_ = attemptResultOf(err);
          endAttempt(dispatch, result_, err);
          if (isToolCall) this.observer?.attempt(req.target, endpoint.nodeId, result_);
          if (!(err instanceof UpstreamFailure)) {
            if (err instanceof JsonRpcError) answeredBy = endpoint.nodeId; // the server's own error answer
            throw err;
          }
          attempts.push({ nodeId: err.nodeId, reason: err.reason });
          if (deadline !== undefined && Date.now() >= deadline) throw deadlineExceeded(req.target, err.nodeId);
          const retry = err.kind === 'refused' || req.retryAfterAcceptance;
          this.logger.warn(
            { callId, target: req.target, nodeId: err.nodeId, kind: err.kind, reason: err.reason, retry },
            retry ? 'call failed on a node; trying another replica' : 'call failed on a node after it was accepted',
          );
          if (!retry) throw nodeFailed(req.target, err.nodeId, err.reason, attempts);
          previous = err;
        }
      }
      throw noReplica(req.target, attempts);
    };
    try {
      return await context.with(trace.setSpan(parent, span), place);
    } catch (err) {
      outcome = outcomeOf(err);
      if (!(err instanceof JsonRpcError) && !(err instanceof CallCancelledError)) {
        this.logger.error({ err, callId, target: req.target }, 'call failed unexpectedly');
      }
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      this.calls.delete(callId);
      span.setAttribute('flotilla.outcome', outcome);
      const ms = performance.now() - started;
      // Inside the span's context, so the line carries the call's trace ids as well as its call id.
      context.with(trace.setSpan(parent, span), () =>
        this.logger.debug({ callId, method: req.request.method, target: req.target, nodeId: answeredBy, outcome, attempts: tried.size, ms: Math.round(ms * 100) / 100 }, 'call finished'),
      );
      span.end();
      if (isToolCall) this.observer?.finished(req.target, answeredBy, outcome, ms / 1000);
    }
  }

  private sendProgress(client: ClientCallContext, progress: Progress): void {
    if (client.progressToken === undefined || client.signal.aborted) return;
    client
      .sendNotification({ method: 'notifications/progress', params: { ...progress, progressToken: client.progressToken } })
      .catch((err: unknown) => this.logger.debug({ err }, 'could not forward progress to the client'));
  }
}

function endAttempt(span: Span, result: AttemptResult, err?: unknown): void {
  span.setAttribute('flotilla.result', result);
  if (result !== 'ok' && result !== 'tool_error') span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : result });
  span.end();
}

function withoutProgressToken(meta: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { progressToken: _token, ...rest } = meta;
  return rest;
}
