import { META_CALL_ID, META_DEADLINE } from '@flotilla/protocol';
import { extractTraceMeta, type Logger } from '@flotilla/telemetry';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, JSONRPCRequest, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { SpanKind, SpanStatusCode, context, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { z } from 'zod';
import { callerLogFields, callerOf, callerSpanAttributes } from './CallCaller.js';
import { outcomeLabel, rejectionLabel, type CallOutcomeLabel } from './callOutcomeLabel.js';
import { deadlineExceeded, type CallRejection } from './callRejections.js';
import type { CallTracker } from './CallTracker.js';
import { isErrorResponse, isNotification, isRequest, isResultResponse } from './messageKinds.js';
import { SessionTasks } from './SessionTasks.js';
import type { CallIdentity, CallOutcome, TrackedCall } from './TrackedCall.js';

const tracer = trace.getTracer('@flotilla/agent');

/** The part of `tools/call` params the agent reads; everything else goes to the server untouched. */
const ToolCallParamsSchema = z.looseObject({
  name: z.string().min(1),
  /** Present (an object) on a task-augmented call. */
  task: z.unknown().optional(),
  _meta: z
    .looseObject({
      progressToken: z.union([z.string(), z.number()]).optional(),
      [META_CALL_ID]: z.string().min(1).max(256).optional().catch(undefined),
      [META_DEADLINE]: z.number().finite().optional().catch(undefined),
    })
    .optional(),
});

const CancelledParamsSchema = z.looseObject({ requestId: z.union([z.string(), z.number()]).optional() });
const ProgressParamsSchema = z.looseObject({
  progressToken: z.union([z.string(), z.number()]),
  progress: z.number(),
  total: z.number().optional(),
});

/** Responses to drop for requests the agent already answered or cancelled; bounded per session. */
const MAX_SILENCED = 1024;

function keyOf(id: RequestId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/** Context of one session's transport. */
export interface ObservedTransportContext {
  nodeId: string;
  server: string;
  tracker: CallTracker;
  logger: Logger;
}

/**
 * Wraps one MCP session's server transport and watches every message on it, feeding the node-wide
 * {@link CallTracker}: `tools/call` requests are admitted, queued or refused (busy, draining) before the
 * server sees them; progress notifications and responses complete the picture; cancellations of queued
 * calls never reach the server; deadlines cancel calls; and server-to-client messages that belong to a
 * call are tagged with its call id (`_meta["flotilla/callId"]`), so a router pooling sessions can route
 * sampling, elicitation and logging to the right client.
 *
 * Tasks (MCP 2025-11-25): a task-augmented `tools/call` is admitted like any call and holds its slot
 * until the server answers with a `CreateTaskResult`; the task is then followed on the wire
 * ({@link SessionTasks}) and counted as open work of the node until it ends. `tasks/get`, `tasks/result`,
 * `tasks/cancel` and `tasks/list` pass untouched: they are follow-ups, never admitted or refused.
 *
 * Messages that arrive before the server has started the transport are held, so the caller can hand the
 * transport its first request without waiting for the server to finish connecting.
 */
export class ObservedTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;

  /** Resolves once the server has installed its handlers and started the transport. */
  readonly started: Promise<void>;
  /** Resolves once the underlying transport closed (client DELETE, agent stop, server close). */
  readonly closedSignal: Promise<void>;
  private resolveStarted!: () => void;
  private resolveClosed!: () => void;
  private isStarted = false;
  private closed = false;
  private held: Array<{ message: JSONRPCMessage; extra: MessageExtraInfo | undefined }> = [];
  private readonly calls = new Map<string, TrackedCall>();
  private readonly byProgressToken = new Map<string, TrackedCall>();
  private readonly silenced = new Set<string>();
  private readonly tasks: SessionTasks;

  constructor(private readonly inner: Transport, private readonly ctx: ObservedTransportContext) {
    this.tasks = new SessionTasks(ctx.server, ctx.tracker);
    this.started = new Promise((resolve) => {
      this.resolveStarted = resolve;
    });
    this.closedSignal = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    inner.onmessage = (message, extra) => this.receive(message, extra);
    inner.onerror = (error) => this.onerror?.(error);
    inner.onclose = () => this.handleClose();
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }

  /** Calls of this session that are queued or running. */
  get openCalls(): number {
    return this.calls.size;
  }

  /** Tasks of this session created and not yet seen to end (see {@link SessionTasks}). */
  get openTasks(): number {
    return this.tasks.size;
  }

  /** Epoch ms when a task of this session last ended (0 if none did). */
  get lastTaskEndedAt(): number {
    return this.tasks.lastEndedAt;
  }

  /** Forgets this session's tasks past their TTL or unheard of for too long. */
  sweepTasks(now = Date.now()): void {
    this.tasks.sweep(now);
  }

  async start(): Promise<void> {
    await this.inner.start();
    this.isStarted = true;
    this.resolveStarted();
    const held = this.held;
    this.held = [];
    for (const { message, extra } of held) this.receive(message, extra);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  /**
   * The HTTP request that carried these requests went away before they were answered (the client dropped
   * the connection): nobody will read the answers, so the calls are cancelled.
   */
  abandon(requestIds: readonly RequestId[]): void {
    for (const id of requestIds) {
      const key = keyOf(id);
      if (this.tasks.isWaitingForResult(id)) {
        // A `tasks/result` waits for its task to end: nobody is left to read the answer. The task itself runs on.
        this.ctx.logger.info({ server: this.ctx.server, requestId: id }, 'client went away; cancelling its tasks/result (the task runs on)');
        this.silence(key);
        this.cancelOnServer(id, 'client disconnected');
        continue;
      }
      const call = this.calls.get(key);
      if (!call) continue;
      inCall(call, () => this.ctx.logger.info(callFields(call.identity), 'client went away; cancelling call'));
      call.span?.addEvent('flotilla.call.cancelled', { 'flotilla.reason': 'client disconnected', 'flotilla.started': call.state === 'running' });
      if (call.state === 'running') this.cancelOnServer(id, 'client disconnected');
      this.finish(key, call, 'cancelled');
    }
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isResultResponse(message) || isErrorResponse(message)) {
      if (message.id !== undefined && message.id !== null) {
        const key = keyOf(message.id);
        this.tasks.response(message);
        if (this.silenced.delete(key)) return; // already answered by the agent, or cancelled
        const call = this.calls.get(key);
        if (call) {
          if (isErrorResponse(message)) this.finish(key, call, 'failed', message.error.message);
          else {
            if (call.identity.task) {
              const taskId = this.tasks.created(message.result, call.identity.tool);
              if (taskId !== undefined) call.span?.setAttribute('flotilla.task_id', taskId);
            }
            this.finish(key, call, isToolError(message.result) ? 'tool_error' : 'completed');
          }
        }
      }
      return this.inner.send(message, options);
    }
    if (isNotification(message) && message.method === 'notifications/tasks/status') this.tasks.seen(message.params);
    if (isNotification(message) && message.method === 'notifications/progress') {
      // Progress is matched to its call by progress token; it needs no call id and goes out untouched.
      const p = ProgressParamsSchema.safeParse(message.params);
      if (p.success) {
        const call = this.byProgressToken.get(keyOf(p.data.progressToken));
        if (call) this.ctx.tracker.progress(call, p.data.progress, p.data.total);
      }
      return this.inner.send(message, options);
    }
    let outgoing = message;
    const related = options?.relatedRequestId;
    if (related !== undefined && (isNotification(message) || isRequest(message))) {
      const call = this.calls.get(keyOf(related));
      if (call) outgoing = tagWithCallId(message, call.identity.callId);
    }
    return this.inner.send(outgoing, options);
  }

  private receive(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void {
    if (!this.isStarted) {
      this.held.push({ message, extra });
      return;
    }
    if (isRequest(message) && message.method === 'tools/call') {
      this.receiveToolCall(message, extra);
      return;
    }
    // Task follow-ups (tasks/get, result, cancel, list) are no new work: never admitted, queued or refused.
    if (isRequest(message)) this.tasks.request(message);
    if (isNotification(message) && message.method === 'notifications/cancelled') {
      const p = CancelledParamsSchema.safeParse(message.params);
      const key = p.success && p.data.requestId !== undefined ? keyOf(p.data.requestId) : undefined;
      const call = key ? this.calls.get(key) : undefined;
      if (key && call) {
        // Per MCP, a cancelled request gets no response. A queued call never reached the server, so the
        // server must not hear of it either; a running one needs the notification to abort its handler.
        call.span?.addEvent('flotilla.call.cancelled', { 'flotilla.reason': 'client', 'flotilla.started': call.state === 'running' });
        if (call.state === 'running') this.deliver(message, extra);
        this.finish(key, call, 'cancelled');
        return;
      }
    }
    this.deliver(message, extra);
  }

  private receiveToolCall(request: JSONRPCRequest, extra: MessageExtraInfo | undefined): void {
    const parsed = ToolCallParamsSchema.safeParse(request.params);
    if (!parsed.success) {
      // Malformed params: the server answers with its own validation error.
      this.deliver(request, extra);
      return;
    }
    const meta = parsed.data._meta;
    const key = keyOf(request.id);
    const callId = meta?.[META_CALL_ID] ?? `${this.sessionId ?? 'session'}:${String(request.id)}`;
    const deadline = meta?.[META_DEADLINE];
    const task = typeof parsed.data.task === 'object' && parsed.data.task !== null;
    const caller = callerOf(extra?.authInfo);
    const identity: CallIdentity = { callId, server: this.ctx.server, tool: parsed.data.name, deadline, ...(task ? { task } : {}), ...(caller ? { caller } : {}) };
    // The caller's trace context (the router's dispatch span, or any client's) is the parent of ours.
    const parent = extractTraceMeta(meta);
    let call: TrackedCall | undefined;
    const admission = this.ctx.tracker.admit(identity, {
      run: () => {
        if (call) this.run(call, request, extra);
      },
      expire: () => {
        if (call) this.expire(key, request.id, call);
      },
    });
    if (!admission.ok) {
      // A refusal is a short span of its own, so the caller's trace shows which node said no, and why.
      const span = this.startCallSpan(identity, request.id, parent);
      span.addEvent('flotilla.call.rejected', { 'flotilla.reason': admission.reason, 'rpc.jsonrpc.error_code': admission.rejection.code });
      endCallSpan(span, rejectionLabel(admission.reason), admission.rejection.message);
      context.with(trace.setSpan(parent, span), () =>
        this.ctx.logger.info({ ...callFields(identity), code: admission.rejection.code, reason: admission.reason }, 'call refused'),
      );
      this.reject(request.id, admission.rejection);
      return;
    }
    call = admission.call;
    // The span opens at admission, so time spent queued for a slot is part of it (and of the caller's view).
    call.span = this.startCallSpan(identity, request.id, parent);
    call.traceContext = trace.setSpan(parent, call.span);
    this.calls.set(key, call);
    const token = meta?.progressToken;
    if (token !== undefined) this.byProgressToken.set(keyOf(token), call);
    if (deadline !== undefined && deadline <= Date.now()) {
      this.expire(key, request.id, call);
      return;
    }
    this.ctx.tracker.enqueue(call);
  }

  /**
   * The agent's span of one call, continuing the caller's trace: `tools/call <tool>`, a SERVER span with the
   * MCP semantic-convention attributes and Flotilla's node and call ids.
   */
  private startCallSpan(identity: CallIdentity, requestId: RequestId, parent: Context): Span {
    const attributes: Attributes = {
      'mcp.method.name': 'tools/call',
      'mcp.tool.name': identity.tool,
      'gen_ai.tool.name': identity.tool,
      'mcp.server': identity.server,
      'jsonrpc.request.id': String(requestId),
      'flotilla.node_id': this.ctx.nodeId,
      'flotilla.call_id': identity.callId,
    };
    if (this.sessionId !== undefined) attributes['mcp.session.id'] = this.sessionId;
    if (identity.deadline !== undefined) attributes['flotilla.deadline'] = new Date(identity.deadline).toISOString();
    if (identity.task) attributes['flotilla.task_augmented'] = true;
    Object.assign(attributes, callerSpanAttributes(identity.caller));
    return tracer.startSpan(`tools/call ${identity.tool}`, { kind: SpanKind.SERVER, attributes }, parent);
  }

  /** A slot is free: note the queue wait on the call's span and hand the request to the server inside it. */
  private run(call: TrackedCall, request: JSONRPCRequest, extra: MessageExtraInfo | undefined): void {
    const waitMs = (call.queueWaitSeconds ?? 0) * 1000;
    call.span?.setAttribute('flotilla.queue_wait_ms', waitMs);
    call.span?.addEvent('flotilla.call.started', { 'flotilla.queue_wait_ms': waitMs });
    // The SDK starts the handler from a promise chain created here, so it (and its logs) run in this span.
    inCall(call, () => {
      this.ctx.logger.debug({ ...callFields(call.identity), queueWaitMs: Math.round(waitMs * 10) / 10 }, 'call started');
      this.deliver(request, extra);
    });
  }

  private expire(key: string, id: RequestId, call: TrackedCall): void {
    const started = call.state === 'running';
    if (call.state === 'done') return;
    inCall(call, () => this.ctx.logger.info({ ...callFields(call.identity), started }, 'call deadline passed; cancelling'));
    call.span?.addEvent('flotilla.call.deadline_exceeded', { 'flotilla.started': started });
    if (started) this.cancelOnServer(id, 'deadline exceeded');
    this.finish(key, call, 'deadline', 'deadline exceeded');
    this.reject(id, deadlineExceeded(this.ctx.nodeId, started));
  }

  /** Tells the server to stop a running request, as if the client had cancelled it. */
  private cancelOnServer(id: RequestId, reason: string): void {
    this.deliver({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } }, undefined);
  }

  private finish(key: string, call: TrackedCall, outcome: CallOutcome, error?: string): void {
    this.calls.delete(key);
    for (const [token, c] of this.byProgressToken) if (c === call) this.byProgressToken.delete(token);
    if (outcome === 'cancelled' || outcome === 'deadline' || outcome === 'closed') this.silence(key);
    const wasRunning = call.state === 'running';
    this.ctx.tracker.finish(call, outcome);
    const label = outcomeLabel(outcome);
    if (wasRunning) {
      inCall(call, () =>
        this.ctx.logger.debug({ ...callFields(call.identity), outcome: label, ms: Date.now() - (call.startedAt ?? call.admittedAt) }, 'call finished'),
      );
    }
    if (call.span) endCallSpan(call.span, label, error);
  }

  private silence(key: string): void {
    this.silenced.add(key);
    if (this.silenced.size > MAX_SILENCED) {
      const oldest = this.silenced.values().next().value;
      if (oldest !== undefined) this.silenced.delete(oldest);
    }
  }

  /** Answers a request with an error without involving the server. */
  private reject(id: RequestId, rejection: CallRejection): void {
    this.inner.send({ jsonrpc: '2.0', id, error: rejection }).catch((err: unknown) => {
      this.ctx.logger.debug({ err, server: this.ctx.server }, 'could not deliver a refusal; the client went away');
    });
  }

  private deliver(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void {
    if (this.closed) return;
    this.onmessage?.(message, extra);
  }

  private handleClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [key, call] of [...this.calls]) {
      call.span?.addEvent('flotilla.call.cancelled', { 'flotilla.reason': 'session closed', 'flotilla.started': call.state === 'running' });
      this.finish(key, call, 'closed');
    }
    this.held = [];
    this.tasks.clear();
    this.onclose?.();
    this.resolveClosed();
  }
}

/** The fields of every log line about one call: its ids, server, tool, and who sent it. */
function callFields(identity: CallIdentity): Record<string, unknown> {
  return { callId: identity.callId, server: identity.server, tool: identity.tool, ...callerLogFields(identity.caller) };
}

/** Runs `fn` in the call's trace context, so log lines written there carry its trace and span ids. */
function inCall<T>(call: TrackedCall, fn: () => T): T {
  return call.traceContext ? context.with(call.traceContext, fn) : fn();
}

/**
 * Ends a call span with its outcome. Only `ok` leaves the status unset (the semantic conventions' rule for
 * server spans); a tool error is an error too, typed `tool_error` as the MCP conventions ask.
 */
function endCallSpan(span: Span, label: CallOutcomeLabel, message?: string): void {
  span.setAttribute('flotilla.outcome', label);
  if (label !== 'ok') {
    span.setAttribute('error.type', label);
    span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? label });
  }
  span.end();
}

/** True for a `tools/call` result that reports a tool failure (`isError: true`). */
function isToolError(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true;
}

/** Copy of a server-to-client message with `_meta["flotilla/callId"]` set. */
function tagWithCallId<M extends { method: string; params?: Record<string, unknown> | undefined }>(message: M, callId: string): M {
  const params = message.params ?? {};
  const meta = typeof params._meta === 'object' && params._meta !== null ? (params._meta as Record<string, unknown>) : {};
  return { ...message, params: { ...params, _meta: { ...meta, [META_CALL_ID]: callId } } };
}
