import { randomUUID } from 'node:crypto';
import type { ClientCapabilities, Implementation } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { ResumeTicket } from '../front/mcp/FrontSession.js';
import type { AeadEnvelope } from './AeadEnvelope.js';
import type { Sealer } from './Sealer.js';

/** What a client said about itself at `initialize` (with the protocol version the router agreed on). */
export interface ClientHello {
  readonly protocolVersion: string;
  readonly capabilities: ClientCapabilities;
  readonly clientInfo: Implementation;
}

const HelloSchema = z.object({
  protocolVersion: z.string().min(1).max(32),
  capabilities: z.record(z.string(), z.unknown()),
  clientInfo: z.looseObject({ name: z.string(), version: z.string() }),
});

/** `p`: the principal the session belongs to (front door); absent when the router ran open. */
const SessionDocumentSchema = z.object({ v: z.literal(1), sid: z.uuid(), hello: HelloSchema, iat: z.number().int(), p: z.string().min(1).max(1024).optional() });

const TicketSchema = z.object({
  sid: z.uuid(),
  requests: z
    .array(z.object({ id: z.union([z.string(), z.number()]), method: z.string().min(1).max(256), rerun: z.boolean(), params: z.record(z.string(), z.unknown()).optional() }))
    .min(1)
    .max(100),
});

/** A session id's `typ`, and a resume ticket's. */
const SESSION_TYP = 'flotilla-session';
const TICKET_TYP = 'flotilla-resume';

/** Largest resume ticket (a POST's requests and, for those that may run again, their params) sealed into event ids, bytes of JSON. */
const MAX_TICKET_BYTES = 1024;

/**
 * Client session ids and stream resume tickets, sealed with the mesh's session key. A session id carries
 * the session's stable id (`sid`, the key of its shared state) and the client's hello, so any replica can
 * take the session up without asking anyone (and the principal it belongs to, so every replica refuses it to anyone else); a resume ticket carries a stream's requests, so another
 * replica can finish them if this one dies. Neither can be forged or read without the key.
 */
export class SessionTokens {
  /** Seals resume tickets: synchronous AES-GCM, once per POST stream (see docs/sessions.md). */
  private readonly tickets: AeadEnvelope;

  constructor(private readonly sealer: Sealer) {
    this.tickets = sealer.envelope(TICKET_TYP);
  }

  /** A new session's id and stable id. */
  async issue(hello: ClientHello, principal?: string): Promise<{ sessionId: string; sid: string }> {
    const sid = randomUUID();
    const sessionId = await this.sealer.seal(SESSION_TYP, { v: 1, sid, hello, iat: Date.now(), ...(principal !== undefined ? { p: principal } : {}) });
    return { sessionId, sid };
  }

  /** What a session id holds; undefined when it is not one this mesh issued. */
  async open(sessionId: string): Promise<{ sid: string; hello: ClientHello; principal?: string } | undefined> {
    if (sessionId.length > 16_384) return undefined;
    const doc = await this.sealer.open(SESSION_TYP, sessionId, SessionDocumentSchema);
    return doc ? { sid: doc.sid, hello: doc.hello as ClientHello, ...(doc.p !== undefined ? { principal: doc.p } : {}) } : undefined;
  }

  /**
   * Seals a resume ticket, synchronously. When the requests' params make it too big for an event id, they
   * are left out and the requests marked not to run again (they get a clear error instead, should this
   * replica die).
   */
  sealTicket(ticket: ResumeTicket): string {
    let text = JSON.stringify(ticket);
    if (text.length > MAX_TICKET_BYTES) text = JSON.stringify({ sid: ticket.sid, requests: ticket.requests.map((r) => ({ id: r.id, method: r.method, rerun: false })) });
    return this.tickets.seal(text);
  }

  /**
   * Opens a sealed resume ticket; undefined when it is not one of this mesh's. Tickets sealed as JWE (by
   * replicas of an earlier version, during a rolling upgrade) still open.
   */
  async openTicket(sealed: string): Promise<ResumeTicket | undefined> {
    if (sealed.length > 16_384) return undefined;
    if (sealed.includes('.')) return (await this.sealer.open(TICKET_TYP, sealed, TicketSchema)) as ResumeTicket | undefined;
    const text = this.tickets.open(sealed);
    if (text === undefined) return undefined;
    try {
      const parsed = TicketSchema.safeParse(JSON.parse(text));
      return parsed.success ? (parsed.data as ResumeTicket) : undefined;
    } catch {
      return undefined;
    }
  }
}
