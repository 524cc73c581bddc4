import type { IncomingMessage, ServerResponse } from 'node:http';
import { FlotillaErrorCode } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import {
  ErrorCode,
  InitializeRequestSchema,
  JSONRPCMessageSchema,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Caller } from '../auth/Caller.js';
import type { IdentitySessions } from '../limits/IdentitySessions.js';
import { emptyRecord } from '../sessions/SessionRecord.js';
import type { ClientHello } from '../sessions/SessionTokens.js';
import { ClientSession, ROUTER_CAPABILITIES, ROUTER_SERVER_INFO } from './ClientSession.js';
import type { ClientSessionServices } from './ClientSessionServices.js';
import { sendJson, sendJsonRpcError } from './JsonRpcHttpError.js';
import { isPlainRequest } from './mcp/plainRequest.js';
import { mergedInstructions } from './mergedInstructions.js';
import { readRequestBody } from './RequestBody.js';
import type { SessionTable } from './SessionTable.js';

/** Largest JSON-RPC batch accepted in one POST. */
const MAX_BATCH = 100;

const BodySchema = z.union([JSONRPCMessageSchema, z.array(JSONRPCMessageSchema).min(1).max(MAX_BATCH)]);

/** What the `/mcp` endpoint needs. */
export interface McpEndpointDeps {
  readonly sessions: SessionTable;
  readonly services: ClientSessionServices;
  readonly maxBodyBytes: number;
  /** Most client sessions at once on this replica; `initialize` past it gets 503. */
  readonly maxSessions: number;
  readonly logger: Logger;
  /** Hears refused initializes (metrics). */
  onSessionRefused?(): void;
  /** Sessions per authenticated identity, capped (front door limits); no cap when absent. */
  readonly identitySessions?: IdentitySessions;
  /** Hears an initialize refused by the per-identity cap (metrics). */
  onIdentitySessionRefused?(caller: Caller): void;
}

/** The principal a caller's sessions are bound to; none for the anonymous caller of an open router. */
function principalOf(caller: Caller | undefined): string | undefined {
  return caller && caller.identity.kind !== 'anonymous' ? caller.identity.principal : undefined;
}

type Resolved = { session: ClientSession } | { status: 404 | 503; message: string };

/**
 * The `/mcp` endpoint (Streamable HTTP, server role): reads and checks the body itself (size limit, JSON,
 * JSON-RPC shape, headers), opens sessions on `initialize`, and hands each request to its client session.
 * A session this replica does not have loaded is taken up from its id (sealed: what the client said at
 * initialize) and its shared record, so any replica serves any session. What no session can answer gets a
 * JSON-RPC error body: 400 bad request, 404 unknown or ended session, 406, 413, 415, 503.
 */
export class McpEndpoint {
  private readonly sessions: SessionTable;
  private readonly logger: Logger;
  /** Sessions being taken up, so concurrent requests of one session take it up once. */
  private readonly resolving = new Map<string, Promise<Resolved>>();

  constructor(private readonly deps: McpEndpointDeps) {
    this.sessions = deps.sessions;
    this.logger = deps.logger;
  }

  /** Handles one `/mcp` request of `caller` (the front door's verdict; absent: anonymous). */
  async handle(req: IncomingMessage, res: ServerResponse, caller?: Caller): Promise<void> {
    const version = header(req, 'mcp-protocol-version');
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      req.resume();
      return sendJsonRpcError(res, 400, -32000, `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    }
    switch (req.method) {
      case 'POST':
        return this.post(req, res, caller);
      case 'GET':
        return this.get(req, res, caller);
      case 'DELETE':
        return this.delete(req, res, caller);
      default:
        req.resume();
        sendJsonRpcError(res, 405, ErrorCode.ConnectionClosed, `Method not allowed: ${req.method ?? ''}; use POST, GET or DELETE`, { allow: 'GET, POST, DELETE' });
    }
  }

  private async post(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    const contentType = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/json') {
      req.resume();
      return sendJsonRpcError(res, 415, ErrorCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json');
    }
    const accept = header(req, 'accept') ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      req.resume();
      return sendJsonRpcError(res, 406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream');
    }
    const body = await readRequestBody(req, this.deps.maxBodyBytes);
    if (body.kind === 'aborted') return;
    if (body.kind === 'too-large') {
      // The rest of the body is not read, so the connection cannot carry another request.
      return sendJsonRpcError(res, 413, ErrorCode.InvalidRequest, `Request body exceeds the limit of ${body.limit} bytes`, { connection: 'close' });
    }
    let json: unknown;
    try {
      json = JSON.parse(body.text);
    } catch (err) {
      return sendJsonRpcError(res, 400, ErrorCode.ParseError, `Parse error: ${(err as Error).message}`);
    }
    const messages = checkedMessages(json);
    if ('detail' in messages) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, `Invalid Request: not a JSON-RPC 2.0 message (${messages.detail})`);
    const initializing = messages.some((m) => (m as { method?: unknown }).method === 'initialize');
    const sessionId = header(req, 'mcp-session-id');
    if (initializing) {
      if (sessionId !== undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: Server already initialized');
      if (messages.length !== 1) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: Only one initialization request is allowed');
      const hello = InitializeRequestSchema.safeParse(messages[0]);
      const id = (messages[0] as { id?: unknown }).id;
      if (!hello.success || (typeof id !== 'string' && typeof id !== 'number')) {
        return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: malformed initialize request');
      }
      return this.initialize(res, id, hello.data.params, caller);
    }
    if (sessionId === undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required (initialize first)');
    const resolved = this.bound(await this.resolve(sessionId), caller);
    if ('status' in resolved) return sendJsonRpcError(res, resolved.status, resolved.status === 404 ? -32001 : -32000, resolved.message);
    await resolved.session.post(messages, res);
  }

  private async get(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    req.resume();
    if (!(header(req, 'accept') ?? '').includes('text/event-stream')) {
      return sendJsonRpcError(res, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    }
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId === undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
    const resolved = this.bound(await this.resolve(sessionId), caller);
    if ('status' in resolved) return sendJsonRpcError(res, resolved.status, resolved.status === 404 ? -32001 : -32000, resolved.message);
    await resolved.session.get(res, header(req, 'last-event-id'));
  }

  private async delete(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    req.resume();
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId === undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
    const resolved = this.bound(await this.resolve(sessionId), caller);
    if ('status' in resolved) return sendJsonRpcError(res, resolved.status, resolved.status === 404 ? -32001 : -32000, resolved.message);
    await resolved.session.end();
    res.writeHead(200).end();
  }

  private async initialize(
    res: ServerResponse,
    id: string | number,
    params: { protocolVersion: string; capabilities: ClientHello['capabilities']; clientInfo: ClientHello['clientInfo'] },
    caller: Caller | undefined,
  ): Promise<void> {
    const principal = principalOf(caller);
    const perIdentity = this.deps.identitySessions;
    if (principal !== undefined && perIdentity && !perIdentity.mayOpen(principal)) {
      this.deps.onIdentitySessionRefused?.(caller!);
      this.logger.warn({ principal, sessions: perIdentity.count(principal) }, 'refused a client session: the identity holds its maximum of sessions');
      return sendJsonRpcError(res, 429, FlotillaErrorCode.RateLimited, `Too Many Requests: this identity holds its maximum of ${perIdentity.max} sessions; close some (DELETE) or retry later`, {
        'retry-after': '5',
      });
    }
    if (this.sessions.size >= this.deps.maxSessions) {
      this.deps.onSessionRefused?.();
      this.logger.warn({ sessions: this.sessions.size }, 'refused a client session: at the session limit');
      return sendJsonRpcError(res, 503, FlotillaErrorCode.SessionLimit, `Service Unavailable: the router holds its maximum of ${this.deps.maxSessions} client sessions; retry later`, {
        'retry-after': '5',
      });
    }
    const { services } = this.deps;
    const protocolVersion = SUPPORTED_PROTOCOL_VERSIONS.includes(params.protocolVersion) ? params.protocolVersion : LATEST_PROTOCOL_VERSION;
    const hello: ClientHello = { protocolVersion, capabilities: params.capabilities, clientInfo: params.clientInfo };
    const { sessionId, sid } = await services.tokens.issue(hello, principal);
    await services.store.create(sid, emptyRecord()).catch((err: unknown) =>
      this.logger.warn({ err, sessionId: sid }, 'could not record the new session in the shared store; only this replica can serve it'),
    );
    const session = new ClientSession(services, { sessionId, sid, hello, ...(principal !== undefined ? { principal } : {}) }, (s) => this.onClosed(s));
    session.caller = caller;
    this.sessions.add(session);
    if (principal !== undefined) perIdentity?.add(principal, sid);
    this.logger.info({ sessionId: sid, client: params.clientInfo.name, sessions: this.sessions.size, ...(principal !== undefined ? { principal } : {}) }, 'client session opened');
    sendJson(res, 200, {
      jsonrpc: '2.0',
      id,
      result: { protocolVersion, capabilities: ROUTER_CAPABILITIES, serverInfo: ROUTER_SERVER_INFO, instructions: mergedInstructions(services.catalog) },
    }, { 'mcp-session-id': sessionId });
  }

  /** The session of `sessionId`: loaded here, or taken up from its sealed id and shared record. */
  private resolve(sessionId: string): Promise<Resolved> {
    const loaded = this.sessions.get(sessionId);
    if (loaded) return Promise.resolve({ session: loaded });
    let pending = this.resolving.get(sessionId);
    if (!pending) {
      pending = this.takeUp(sessionId).finally(() => this.resolving.delete(sessionId));
      this.resolving.set(sessionId, pending);
    }
    return pending;
  }

  private async takeUp(sessionId: string): Promise<Resolved> {
    const { services } = this.deps;
    const opened = await services.tokens.open(sessionId);
    if (!opened) return { status: 404, message: 'Session not found' };
    let stored;
    try {
      stored = await services.store.load(opened.sid);
    } catch (err) {
      this.logger.warn({ err, sessionId: opened.sid }, 'cannot read a session record');
      return { status: 503, message: 'Service Unavailable: the session state cannot be read now; retry' };
    }
    if (!stored) return { status: 404, message: 'Session not found' };
    const principal = opened.principal;
    const session = new ClientSession(services, { sessionId, sid: opened.sid, hello: opened.hello, ...(principal !== undefined ? { principal } : {}) }, (s) => this.onClosed(s), stored);
    this.sessions.add(session);
    if (principal !== undefined) this.deps.identitySessions?.add(principal, opened.sid);
    this.logger.info({ sessionId: opened.sid }, 'client session taken up on this replica');
    return { session };
  }

  /**
   * A session is served only to the identity that opened it (its principal is sealed into its id, so this
   * holds on every replica); anyone else is told it does not exist. The session's caller becomes this
   * request's (its latest token's scopes and grants).
   */
  private bound(resolved: Resolved, caller: Caller | undefined): Resolved {
    if ('status' in resolved) return resolved;
    const owner = resolved.session.identity.principal;
    const principal = principalOf(caller);
    if (owner !== principal) {
      this.logger.warn({ sessionId: resolved.session.sid, owner, principal: principal ?? 'anonymous' }, 'refused a session to an identity other than the one that opened it');
      return { status: 404, message: 'Session not found' };
    }
    resolved.session.caller = caller;
    return resolved;
  }

  private onClosed(session: ClientSession): void {
    this.sessions.remove(session);
    if (session.identity.principal !== undefined) this.deps.identitySessions?.remove(session.identity.principal, session.sid);
    this.logger.info({ sessionId: session.sid, sessions: this.sessions.size }, 'client session closed');
  }
}

/**
 * The body's messages once checked to be JSON-RPC: a single plain request (every call) passes a cheap check
 * that accepts exactly what the schema would; anything else is checked with the schema.
 */
function checkedMessages(json: unknown): JSONRPCMessage[] | { detail: string } {
  if (isPlainRequest(json)) return [json];
  const parsed = BodySchema.safeParse(json);
  if (parsed.success) return Array.isArray(parsed.data) ? parsed.data : [parsed.data];
  return { detail: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
