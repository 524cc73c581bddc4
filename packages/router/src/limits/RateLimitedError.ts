import { FlotillaErrorCode } from '@flotilla/protocol';
import { JsonRpcError } from '../errors/JsonRpcError.js';

/** Which limit refused a request. */
export type LimitName = 'client_rate' | 'session_rate' | 'client_queue' | 'router_queue' | 'queue_wait' | 'identity_sessions';

/** The JSON-RPC error a limited request gets: nothing ran; `data.retryAfterMs` says when to try again. */
export function rateLimited(limit: LimitName, message: string, retryAfterMs: number): JsonRpcError {
  return new JsonRpcError(FlotillaErrorCode.RateLimited, message, { limit, retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)), retryable: true });
}
