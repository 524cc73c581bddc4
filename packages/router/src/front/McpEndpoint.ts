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
import { emptyRecord } from '../sessions/SessionRecord.js';
import type { ClientHello } from '../sessions/SessionTokens.js';
import { ClientSession, ROUTER_CAPABILITIES, ROUTER_SERVER_INFO } from './ClientSession.js';
import type { ClientSessionServices } from './ClientSessionServices.js';
import { sendJson, sendJsonRpcError } from './JsonRpcHttpError.js';
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

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const version = header(req, 'mcp-protocol-version');
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      req.resume();
      return sendJsonRpcError(res, 400, -32000, `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    }
    switch (req.method) {
      case 'POST':
        return this.post(req, res);
      case 'GET':
        return this.get(req, res);
      case 'DELETE':
        return this.delete(req, res);
      default:
        req.resume();
        sendJsonRpcError(res, 405, ErrorCode.ConnectionClosed, `Method not allowed: ${req.method ?? ''}; use POST, GET or DELETE`, { allow: 'GET, POST, DELETE' });
    }
  }

  private async post(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
    const parsed = BodySchema.safeParse(json);
    if (!parsed.success) {
      const detail = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, `Invalid Request: not a JSON-RPC 2.0 message (${detail})`);
    }
    const messages: JSONRPCMessage[] = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
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
      return this.initialize(res, id, hello.data.params);
    }
    if (sessionId === undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required (initialize first)');
    const resolved = await this.resolve(sessionId);
    if ('status' in resolved) return sendJsonRpcError(res, resolved.status, resolved.status === 404 ? -32001 : -32000, resolved.message);
    await resolved.session.post(messages, res);
  }

  private async get(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    if (!(header(req, 'accept') ?? '').includes('text/event-stream')) {
      return sendJsonRpcError(res, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    }
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId === undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
    const resolved = await this.resolve(sessionId);
    if ('status' in resolved) return sendJsonRpcError(res, resolved.status, resolved.status === 404 ? -32001 : -32000, resolved.message);
    await resolved.session.get(res, header(req, 'last-event-id'));
  }

  private async delete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId === undefined) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
    const resolved = await this.resolve(sessionId);
    if ('status' in resolved) return sendJsonRpcError(res, resolved.status, resolved.status === 404 ? -32001 : -32000, resolved.message);
    await resolved.session.end();
    res.writeHead(200).end();
  }

  private async initialize(res: ServerResponse, id: string | number, params: { protocolVersion: string; capabilities: ClientHello['capabilities']; clientInfo: ClientHello['clientInfo'] }): Promise<void> {
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
    const { sessionId, sid } = await services.tokens.issue(hello);
    await services.store.create(sid, emptyRecord()).catch((err: unknown) =>
      this.logger.warn({ err, sessionId: sid }, 'could not record the new session in the shared store; only this replica can serve it'),
    );
    const session = new ClientSession(services, { sessionId, sid, hello }, (s) => this.onClosed(s));
    this.sessions.add(session);
    this.logger.info({ sessionId: sid, client: params.clientInfo.name, sessions: this.sessions.size }, 'client session opened');
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
    const session = new ClientSession(services, { sessionId, sid: opened.sid, hello: opened.hello }, (s) => this.onClosed(s), stored);
    this.sessions.add(session);
    this.logger.info({ sessionId: opened.sid }, 'client session taken up on this replica');
    return { session };
  }

  private onClosed(session: ClientSession): void {
    this.sessions.remove(session);
    this.logger.info({ sessionId: session.sid, sessions: this.sessions.size }, 'client session closed');
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
