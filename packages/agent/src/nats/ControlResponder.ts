import { ControlRequestSchema, PROTOCOL_VERSION, SIGNATURE_HEADER, SIGNER_HEADER, decodeJson, encodeJson, type ControlReply, type ControlRequest } from '@flotilla/protocol';
import type { ReceivedControl } from '@flotilla/trust';
import type { Logger } from '@flotilla/telemetry';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';

/** What a control request is answered from. */
export interface ControlTarget {
  nodeId: string;
  /** Current draining flag and load, for every reply. */
  state(): { draining: boolean; inflight: number; queued: number };
  /** Starts a drain (does not wait for it). */
  drain(graceMs: number | undefined): void;
  /** Why a request may not run (no or a bad operator credential), or undefined; see `ControlAuthenticator`. */
  authorize(received: ReceivedControl): string | undefined;
}

/**
 * Answers `control.<nodeId>` requests (NATS request/reply): `status`, and `drain` which replies at once
 * and then drains. A malformed request gets `ok: false` with the reason; nothing here throws.
 */
export class ControlResponder {
  private subscription: Subscription | undefined;

  constructor(private readonly subject: string, private readonly target: ControlTarget, private readonly logger: Logger) {}

  /** Subscribes on a (new) connection; a previous subscription is dropped. */
  attach(nc: NatsConnection): void {
    this.detach();
    this.subscription = nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err) {
          this.logger.warn({ err }, 'control subscription error');
          return;
        }
        const decoded = decodeJson(ControlRequestSchema, msg.data);
        let reply: ControlReply;
        if (!decoded.ok) {
          this.logger.warn({ error: decoded.error }, 'invalid control request');
          // Nothing about the node's load for a request nobody authenticated.
          reply = this.refusal(`invalid control request: ${decoded.error}`);
        } else {
          const refused = this.target.authorize({
            subject: msg.subject,
            payload: msg.data,
            request: decoded.value,
            signer: msg.headers?.get(SIGNER_HEADER) || undefined,
            signature: msg.headers?.get(SIGNATURE_HEADER) || undefined,
          });
          if (refused) this.logger.warn({ op: decoded.value.op, reason: refused }, 'control request refused');
          reply = refused ? this.refusal(`refused: ${refused}`) : this.handle(decoded.value);
        }
        if (msg.reply) {
          try {
            msg.respond(encodeJson(reply));
          } catch (e) {
            this.logger.debug({ err: e }, 'could not answer a control request');
          }
        }
      },
    });
  }

  detach(): void {
    try {
      this.subscription?.unsubscribe();
    } catch {
      // The connection is already gone.
    }
    this.subscription = undefined;
  }

  private handle(request: ControlRequest): ControlReply {
    if (request.op === 'status') return this.reply(true);
    this.logger.info({ graceMs: request.graceMs }, 'drain requested over NATS');
    this.target.drain(request.graceMs);
    return this.reply(true);
  }

  /** A refusal says nothing of the node's load: the asker is not known to be an operator. */
  private refusal(error: string): ControlReply {
    return { v: PROTOCOL_VERSION, ok: false, nodeId: this.target.nodeId, draining: false, inflight: 0, queued: 0, error };
  }

  private reply(ok: boolean, error?: string): ControlReply {
    const s = this.target.state();
    return { v: PROTOCOL_VERSION, ok, nodeId: this.target.nodeId, draining: s.draining, inflight: s.inflight, queued: s.queued, ...(error ? { error } : {}) };
  }
}
