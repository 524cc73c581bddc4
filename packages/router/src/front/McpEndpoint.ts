import type { IncomingMessage, ServerResponse } from 'node:http';
import { FlotillaErrorCode } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { ErrorCode, InitializeRequestSchema, JSONRPCMessageSchema, isJSONRPCRequest, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { ClientSession, type ClientHello } from './ClientSession.js';
import type { ClientSessionServices } from './ClientSessionServices.js';
import { sendJsonRpcError } from './JsonRpcHttpError.js';
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
  /** Most client sessions at once; `initialize` past it gets 503. */
  readonly maxSessions: number;
  readonly logger: Logger;
  /** Hears refused initializes (metrics). */
  onSessionRefused?(): void;
}

/**
 * The `/mcp` endpoint: reads and checks the body itself (size limit, JSON, JSON-RPC shape), routes each
 * HTTP request to its client session (creating one on `initialize`), and answers what no session can
 * with a JSON-RPC error body: 400 missing session, 404 unknown session, 413 too large, 415 not JSON.
 */
export class McpEndpoint {
  private readonly sessions: SessionTable;
  private readonly logger: Logger;

  constructor(private readonly deps: McpEndpointDeps) {
    this.sessions = deps.sessions;
    this.logger = deps.logger;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (req.method) {
      case 'POST':
        return this.post(req, res);
      case 'GET':
      case 'DELETE':
        return this.withSession(req, res);
      default:
        sendJsonRpcError(res, 405, ErrorCode.ConnectionClosed, `Method not allowed: ${req.method ?? ''}; use POST, GET or DELETE`, { allow: 'GET, POST, DELETE' });
    }
  }

  private async post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/json') {
      req.resume();
      return sendJsonRpcError(res, 415, ErrorCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json');
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
    const requestIds: RequestId[] = messages.filter(isJSONRPCRequest).map((m) => m.id);
    const sessionId = header(req, 'mcp-session-id');

    if (!sessionId) {
      const hello = messages.length === 1 ? InitializeRequestSchema.safeParse(messages[0]) : undefined;
      if (hello?.success) return this.initialize(req, res, json, hello.data.params);
      return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required (initialize first)');
    }
    const session = this.sessions.get(sessionId);
    if (!session) return sendJsonRpcError(res, 404, -32001, 'Session not found');
    await session.handle(req, res, json, requestIds);
  }

  private async withSession(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sessionId = header(req, 'mcp-session-id');
    if (!sessionId) return sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
    const session = this.sessions.get(sessionId);
    if (!session) return sendJsonRpcError(res, 404, -32001, 'Session not found');
    await session.handle(req, res);
  }

  private async initialize(req: IncomingMessage, res: ServerResponse, body: unknown, hello: ClientHello): Promise<void> {
    if (this.sessions.size >= this.deps.maxSessions) {
      this.deps.onSessionRefused?.();
      this.logger.warn({ sessions: this.sessions.size }, 'refused a client session: at the session limit');
      return sendJsonRpcError(res, 503, FlotillaErrorCode.SessionLimit, `Service Unavailable: the router holds its maximum of ${this.deps.maxSessions} client sessions; retry later`, { 'retry-after': '5' });
    }
    const session = new ClientSession(this.deps.services, hello, {
      onInitialized: (s) => {
        this.sessions.add(s);
        this.logger.info({ sessionId: s.sessionId, sessions: this.sessions.size }, 'client session opened');
      },
      onClosed: (s) => {
        this.sessions.remove(s);
        this.logger.info({ sessionId: s.sessionId, sessions: this.sessions.size }, 'client session closed');
      },
    });
    await session.start();
    await session.handle(req, res, body);
    // An initialize that failed (e.g. not acceptable) leaves a session nobody can reach: drop it.
    if (!session.sessionId || !this.sessions.get(session.sessionId)) await session.close();
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
