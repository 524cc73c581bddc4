import {
  decodeJson,
  encodeJson,
  ReplicaAnswerSchema,
  SessionAskReplySchema,
  SessionAskSchema,
  SessionCancelSchema,
  SessionPushSchema,
  SessionStreamHandOffSchema,
  type SessionAskReply,
  type SessionStreamHandOff,
  type Subjects,
} from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { z } from 'zod';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import type { ReplicaPeers } from '../front/ClientSessionServices.js';
import type { ClientResponse } from '../front/mcp/OutboundRequests.js';

/** A message for a client, as replicas pass it on. */
export interface ClientBoundMessage {
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

/** A client session loaded on this replica, as the bus reaches it. */
export interface BusSession {
  /** A client answer to a request this replica sent. */
  acceptResponse(response: ClientResponse): void;
  /** Cancels a client request if it runs here. */
  cancel(requestId: string | number, reason: string): boolean;
}

/** A client session whose client's standalone stream this replica holds. */
export interface StreamHolder {
  push(message: ClientBoundMessage): void;
  ask(request: ClientBoundMessage, timeoutMs: number): Promise<Record<string, unknown>>;
  /** Holds the standalone stream of one of the client's upstream sessions. */
  takeStream(binding: SessionStreamHandOff['binding']): Promise<void>;
}

/** What a {@link ReplicaBus} needs. */
export interface ReplicaBusDeps {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /** This replica's tag. */
  readonly tag: string;
  readonly logger: Logger;
  /** The client session of stable id `sid` loaded here, if any. */
  session(sid: string): BusSession | undefined;
}

/** Longest a hand-off of an upstream stream waits for the replica that holds the client's stream, ms. */
const HAND_OFF_TIMEOUT_MS = 2000;

/**
 * How router replicas serving the same client sessions talk (NATS): what a server sends outside calls goes
 * to the replica holding the client's stream (`push`, `ask`), that replica is asked to hold the upstream
 * streams as sessions open elsewhere (`handOff`), a client's answer to a request reaches the replica that
 * sent it, and a cancellation reaches the replica running the request. Every payload is checked.
 */
export class ReplicaBus implements ReplicaPeers {
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly deps: ReplicaBusDeps) {}

  start(): void {
    const { nc, subjects, tag } = this.deps;
    this.subscriptions.push(
      nc.subscribe(subjects.replicaAnswers(tag), { callback: (err, msg) => {
        if (!err) this.onAnswer(msg);
      } }),
      nc.subscribe(subjects.sessionCancels, { callback: (err, msg) => {
        if (!err) this.onCancel(msg);
      } }),
    );
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
  }

  /** This replica holds the client stream of session `sid`: it takes what other replicas have for it. Returns the release. */
  hold(sid: string, holder: StreamHolder): () => void {
    const { nc, subjects } = this.deps;
    const subs = [
      nc.subscribe(subjects.sessionPush(sid), { callback: (err, msg) => {
        if (!err) this.onPush(holder, msg);
      } }),
      nc.subscribe(subjects.sessionAsk(sid), { callback: (err, msg) => {
        if (!err) void this.onAsk(holder, msg);
      } }),
      nc.subscribe(subjects.sessionStreams(sid), { callback: (err, msg) => {
        if (!err) void this.onHandOff(holder, msg);
      } }),
    ];
    return () => {
      for (const s of subs) s.unsubscribe();
    };
  }

  /** A notification for a client whose stream another replica holds (dropped when none does, as the spec allows). */
  push(sid: string, message: ClientBoundMessage): void {
    this.deps.nc.publish(this.deps.subjects.sessionPush(sid), encodeJson({ message }));
  }

  /** A request for a client whose stream another replica holds; rejects when none does. */
  async ask(sid: string, request: ClientBoundMessage, timeoutMs: number): Promise<Record<string, unknown>> {
    let reply: Msg;
    try {
      reply = await this.deps.nc.request(this.deps.subjects.sessionAsk(sid), encodeJson({ request, timeoutMs }), { timeout: timeoutMs + 1000 });
    } catch {
      throw new JsonRpcError(ErrorCode.InvalidRequest, `cannot send ${request.method}: the client has no open stream for requests outside a call`);
    }
    const decoded = decodeJson(SessionAskReplySchema, reply.data);
    if (!decoded.ok) throw new JsonRpcError(ErrorCode.InternalError, `a router replica answered ${request.method} with an invalid reply`);
    if ('error' in decoded.value) throw new JsonRpcError(decoded.value.error.code, decoded.value.error.message, decoded.value.error.data);
    return decoded.value.result;
  }

  /** Asks the replica holding the client stream of `sid` to hold an upstream session's stream; resolves when it did, or none does. */
  async handOff(sid: string, binding: SessionStreamHandOff['binding']): Promise<void> {
    try {
      await this.deps.nc.request(this.deps.subjects.sessionStreams(sid), encodeJson({ binding }), { timeout: HAND_OFF_TIMEOUT_MS });
    } catch {
      // No replica holds the client's stream (nothing outside calls can reach it anyway), or it is slow.
    }
  }

  forwardResponse(sid: string, replica: string, response: ClientResponse): void {
    this.deps.nc.publish(this.deps.subjects.replicaAnswers(replica), encodeJson({ sid, response }));
  }

  forwardCancel(sid: string, requestId: string | number, reason: string | undefined): void {
    this.deps.nc.publish(this.deps.subjects.sessionCancels, encodeJson({ sid, requestId, ...(reason !== undefined ? { reason } : {}) }));
  }

  private decode<S extends z.ZodType>(schema: S, msg: Msg, what: string): z.output<S> | undefined {
    const decoded = decodeJson(schema, msg.data);
    if (!decoded.ok) this.deps.logger.warn({ subject: msg.subject, error: decoded.error }, `dropping an invalid ${what} from another router replica`);
    return decoded.ok ? decoded.value : undefined;
  }

  private onAnswer(msg: Msg): void {
    const answer = this.decode(ReplicaAnswerSchema, msg, 'client answer');
    if (answer) this.deps.session(answer.sid)?.acceptResponse(answer.response as ClientResponse);
  }

  private onCancel(msg: Msg): void {
    const cancel = this.decode(SessionCancelSchema, msg, 'cancellation');
    if (cancel) this.deps.session(cancel.sid)?.cancel(cancel.requestId, cancel.reason ?? 'cancelled by the client');
  }

  private onPush(holder: StreamHolder, msg: Msg): void {
    const push = this.decode(SessionPushSchema, msg, 'notification');
    if (push) holder.push(push.message);
  }

  private async onAsk(holder: StreamHolder, msg: Msg): Promise<void> {
    const ask = this.decode(SessionAskSchema, msg, 'request');
    if (!ask) return;
    let reply: SessionAskReply;
    try {
      reply = { result: await holder.ask(ask.request, ask.timeoutMs) };
    } catch (err) {
      const e = err instanceof JsonRpcError ? err : new JsonRpcError(ErrorCode.InternalError, err instanceof Error ? err.message : String(err));
      reply = { error: { code: e.code, message: e.message, ...(e.data !== undefined ? { data: e.data } : {}) } };
    }
    msg.respond(encodeJson(reply));
  }

  private async onHandOff(holder: StreamHolder, msg: Msg): Promise<void> {
    const handOff = this.decode(SessionStreamHandOffSchema, msg, 'stream hand-off');
    if (!handOff) return;
    await holder.takeStream(handOff.binding).catch((err: unknown) => this.deps.logger.debug({ err }, 'could not take an upstream stream'));
    msg.respond(encodeJson({}));
  }
}
