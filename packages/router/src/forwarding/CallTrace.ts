import { META_TRACEPARENT } from '@flotilla/protocol';
import { extractTraceMeta } from '@flotilla/telemetry';
import { SpanKind, SpanStatusCode, isSpanContextValid, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Unavailability } from '../endpoint/ForwardTarget.js';
import type { AttemptResult, CallOutcome } from './CallObserver.js';

const tracer = trace.getTracer('@flotilla/router');

/** The call a {@link CallTrace} is about. */
export interface TracedCall {
  readonly method: string;
  /** Client-facing name (namespaced tool or prompt, or URI). */
  readonly target: string;
  readonly server: string;
  readonly callId: string;
  readonly sessionId: string;
  readonly requestId: RequestId;
  /** The client's `params._meta`, whose `traceparent` the server span continues. */
  readonly clientMeta: Readonly<Record<string, unknown>>;
  /** The caller's principal (front door), as `enduser.id`. */
  readonly principal?: string;
}

/** One attempt as its dispatch span describes it. */
export interface DispatchDetails {
  readonly nodeId: string;
  /** 1-based, counting hedges. */
  readonly attempt: number;
  /** Where the node's MCP endpoint is (`server.address`, `server.port`), when known. */
  readonly address?: { readonly host: string; readonly port: number };
  readonly strategy: string;
  /** The balancer's reason for this node (formatted only when the span records). */
  readonly reason: () => string;
  /** Replicas left out before the balancer chose, with why (breaker open, draining, …). */
  readonly excluded: ReadonlyArray<{ readonly nodeId: string; readonly why: Unavailability }>;
  readonly hedge: boolean;
}

/** A failed attempt that another one follows. */
export interface FailedAttemptDetails {
  readonly nodeId: string;
  readonly attempt: number;
  readonly reason: AttemptResult;
  /** What went wrong, in the node's or the router's words. */
  readonly message: string;
}

/** The dispatch span of one attempt; its context is what the node gets in `_meta.traceparent`. */
export class DispatchTrace {
  constructor(
    private readonly span: Span,
    /** Context with this span active. */
    readonly context: Context,
  ) {}

  /** The attempt left the router's per-node queue after `waitMs`. */
  dequeued(waitMs: number): void {
    this.span.setAttribute('flotilla.queue_wait_ms', Math.round(waitMs * 100) / 100);
  }

  end(result: AttemptResult, err?: unknown): void {
    this.span.setAttribute('flotilla.result', result);
    if (result !== 'ok' && result !== 'tool_error') {
      this.span.setAttribute('error.type', result);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : result });
    }
    this.span.end();
  }
}

/**
 * The spans of one forwarded call (docs/observability.md): the router's server span, continuing the
 * client's trace, with one dispatch span per attempt below it, and the events that say what happened on
 * the way: retries, failovers, hedges, breaker rejections, cancellation and a passed deadline. Without an
 * OpenTelemetry SDK every span is a no-op, and attributes that take work to build are built only for
 * spans that record.
 */
export class CallTrace {
  private readonly span: Span;
  private readonly parent: Context;
  /** Context with the server span active: the call runs inside it, so its log lines carry its trace ids. */
  readonly context: Context;
  /** The call's trace id: the server span's when tracing is on, else the client's `traceparent`'s. */
  readonly traceId: string | undefined;
  private readonly breakerRejectionsSeen = new Set<string>();

  constructor(private readonly call: TracedCall, tool: string | undefined) {
    this.parent = extractTraceMeta(call.clientMeta);
    const isToolCall = call.method === 'tools/call';
    this.span = tracer.startSpan(
      `${call.method} ${call.target}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'mcp.method.name': call.method,
          ...(isToolCall ? { 'mcp.tool.name': call.target, 'gen_ai.tool.name': call.target } : {}),
          'mcp.server': call.server,
          'mcp.session.id': call.sessionId,
          'jsonrpc.request.id': String(call.requestId),
          'flotilla.call_id': call.callId,
          ...(call.principal !== undefined ? { 'enduser.id': call.principal } : {}),
          ...(tool !== undefined ? { 'flotilla.tool': tool } : {}),
        },
      },
      this.parent,
    );
    this.context = trace.setSpan(this.parent, this.span);
    const own = this.span.spanContext();
    this.traceId = isSpanContextValid(own) ? own.traceId : traceIdOfMeta(call.clientMeta);
  }

  /** Replicas left out before choosing a node (whether or not one is left to choose): breakers that kept the call off a node are events. */
  skipped(excluded: DispatchDetails['excluded']): void {
    if (!this.span.isRecording()) return;
    for (const e of excluded) {
      if (e.why === 'breaker_open' || e.why === 'tool_breaker_open') this.breakerRejected(e.nodeId, e.why === 'tool_breaker_open' ? 'tool' : 'node');
    }
  }

  /** Opens the dispatch span of an attempt. */
  dispatch(d: DispatchDetails): DispatchTrace {
    const span = tracer.startSpan(`dispatch ${this.call.target}`, { kind: SpanKind.CLIENT }, this.context);
    if (span.isRecording()) {
      const attributes: Attributes = {
        'flotilla.node_id': d.nodeId,
        'flotilla.attempt': d.attempt,
        'flotilla.call_id': this.call.callId,
        'mcp.server': this.call.server,
        'flotilla.balancer.strategy': d.strategy,
        'flotilla.balancer.reason': d.reason(),
        ...(d.address ? { 'server.address': d.address.host, 'server.port': d.address.port } : {}),
        ...(d.excluded.length ? { 'flotilla.balancer.excluded': d.excluded.map((e) => `${e.nodeId}: ${e.why}`).join(', ') } : {}),
        ...(d.hedge ? { 'flotilla.hedge': true } : {}),
      };
      span.setAttributes(attributes);
    }
    return new DispatchTrace(span, trace.setSpan(this.parent, span));
  }

  /** An attempt failed on its node; a breaker's refusal is an event (whether or not another attempt follows). */
  attemptFailed(failed: FailedAttemptDetails): void {
    if (failed.reason === 'breaker_open') this.breakerRejected(failed.nodeId, undefined, failed.attempt, failed.message);
  }

  /**
   * Another attempt follows a failed one: `flotilla.retry` when the node never started the call,
   * `flotilla.failover` when it had.
   */
  anotherAttempt(kind: 'retry' | 'failover', failed: FailedAttemptDetails): void {
    this.span.addEvent(`flotilla.${kind}`, {
      'flotilla.reason': failed.reason,
      'flotilla.node_id': failed.nodeId,
      'flotilla.attempt': failed.attempt,
      'flotilla.error': failed.message,
    });
  }

  /** The client's sticky binding for the call's server moved from `from` to `to`, because `why`. */
  affinityMoved(from: string, to: string, why: string): void {
    this.span.addEvent('flotilla.affinity.moved', { 'flotilla.from_node_id': from, 'flotilla.node_id': to, 'flotilla.reason': why });
  }

  /** A second copy of a read-only call went to `nodeId` after the first ran `afterMs`. */
  hedged(nodeId: string, firstNodeId: string, afterMs: number): void {
    this.span.addEvent('flotilla.hedge', { 'flotilla.node_id': nodeId, 'flotilla.first_node_id': firstNodeId, 'flotilla.after_ms': Math.round(afterMs) });
  }

  /** The client cancelled (`client`) or dropped its connection (`client disconnected`) while the call ran on `nodeId`. */
  cancelled(nodeId: string | undefined, reason: 'client' | 'client disconnected'): void {
    this.span.addEvent('flotilla.call.cancelled', { 'flotilla.reason': reason, ...(nodeId ? { 'flotilla.node_id': nodeId } : {}) });
  }

  /** The client's deadline passed while the call ran on `nodeId`. */
  deadlineExceeded(nodeId: string | undefined): void {
    this.span.addEvent('flotilla.call.deadline_exceeded', nodeId ? { 'flotilla.node_id': nodeId } : {});
  }

  /** Ends the server span with the outcome the client got; `answeredBy` is the node whose answer it was, if any. */
  end(outcome: CallOutcome, answeredBy: string | undefined, attempts: number, err?: unknown): void {
    if (answeredBy !== undefined) this.span.setAttribute('flotilla.node_id', answeredBy);
    this.span.setAttributes({ 'flotilla.outcome': outcome, 'flotilla.attempts': attempts });
    if (outcome !== 'ok') this.span.setAttribute('error.type', outcome);
    if (err !== undefined) this.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    this.span.end();
  }

  /**
   * A breaker kept the call off a node: skipped while choosing (`breaker` says which breaker; once per node
   * and breaker per call, as a node skipped on every attempt is one fact), or refused an attempt.
   */
  private breakerRejected(nodeId: string, breaker: 'node' | 'tool' | undefined, attempt?: number, message?: string): void {
    const key = `${nodeId}\0${breaker ?? ''}\0${attempt ?? ''}`;
    if (this.breakerRejectionsSeen.has(key)) return;
    this.breakerRejectionsSeen.add(key);
    this.span.addEvent('flotilla.breaker.rejected', {
      'flotilla.node_id': nodeId,
      ...(breaker ? { 'flotilla.breaker': breaker } : {}),
      ...(attempt !== undefined ? { 'flotilla.attempt': attempt } : {}),
      ...(message !== undefined ? { 'flotilla.error': message } : {}),
    });
  }
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Trace id of a client's `_meta.traceparent` (W3C), if it carries a valid one: the router's spans continue
 * the client's trace, so this is the call's trace id even when the router itself does not trace.
 */
export function traceIdOfMeta(meta: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const raw = meta?.[META_TRACEPARENT];
  if (typeof raw !== 'string') return undefined;
  const id = TRACEPARENT.exec(raw.trim().toLowerCase())?.[1];
  return id && id !== '0'.repeat(32) ? id : undefined;
}
