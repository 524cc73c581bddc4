import { FlotillaErrorCode } from '@flotilla/protocol';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcErrorObject } from '../http/SessionBudget.js';

/** The mounted server cannot take a session or request now; nothing ran (a "not accepted" code). */
export function serverUnavailable(nodeId: string, server: string, reason: string): JsonRpcErrorObject {
  return {
    code: FlotillaErrorCode.ServerUnavailable,
    message: `server ${server} on node ${nodeId} is unavailable: ${reason}; nothing ran: retry on another node or later`,
    data: { nodeId, server, reason, retryable: true },
  };
}

/** Every process of a per-session mount is taken; no session was opened (a "not accepted" code). */
export function poolFull(nodeId: string, server: string, max: number): JsonRpcErrorObject {
  return {
    code: FlotillaErrorCode.SessionLimit,
    message: `server ${server} on node ${nodeId} runs a process per session and all ${max} are taken (pool.max); no session was opened: retry on another node or later`,
    data: { nodeId, server, limit: max, retryable: true },
  };
}

/** A request a shared stdio process cannot serve for one client without affecting the others. */
export function notShared(server: string, method: string, why: string): JsonRpcErrorObject {
  return {
    code: ErrorCode.MethodNotFound,
    message: `${method} is not available on ${server}: ${why}. One process serves every client of this mount (sessions: shared); mount it with sessions: per-session to give each client its own`,
    data: { server, method, sessions: 'shared' },
  };
}

/** Thrown by a host that refuses to open a session; the endpoint answers `initialize` with HTTP 503 and this error. */
export class SessionRefusedError extends Error {
  constructor(readonly error: JsonRpcErrorObject) {
    super(error.message);
    this.name = 'SessionRefusedError';
  }
}
