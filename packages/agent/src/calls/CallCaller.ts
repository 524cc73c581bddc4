import type { MeshTokenClaims } from '@flotilla/protocol';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Attributes } from '@opentelemetry/api';

/**
 * Who sent a call, as the mesh token the agent verified says: the client identity the router speaks for
 * (the token's `sub`: the front door's principal, `router` when the router runs open), the router's mesh key
 * (`iss`) and, when the token names it, the router replica (`rep`).
 */
export interface CallCaller {
  readonly principal: string;
  readonly routerKey: string;
  readonly replica?: string;
}

/** Span attribute of the caller's principal: the router's own call span uses the same name. */
export const ATTR_PRINCIPAL = 'enduser.id';
/** Span attribute of the router's mesh key that signed the call's token. */
export const ATTR_ROUTER_KEY = 'flotilla.router.key';
/** Span attribute of the router replica that sent the call. */
export const ATTR_ROUTER_REPLICA = 'flotilla.router.replica';

/**
 * The SDK's `AuthInfo` for a request carrying a verified mesh token: set as `req.auth`, the transport hands
 * it with every message of the request (`extra.authInfo`), to the agent's call tracking and to the hosted
 * server's handlers alike.
 */
export function meshAuthInfo(claims: MeshTokenClaims, token: string): AuthInfo {
  return {
    token,
    clientId: claims.iss,
    scopes: [],
    expiresAt: claims.exp,
    extra: { sub: claims.sub ?? 'router', ...(claims.rep !== undefined ? { replica: claims.rep } : {}) },
  };
}

/** The caller that {@link meshAuthInfo} describes; undefined for requests without a mesh token. */
export function callerOf(auth: AuthInfo | undefined): CallCaller | undefined {
  if (!auth) return undefined;
  const sub = auth.extra?.['sub'];
  const replica = auth.extra?.['replica'];
  if (typeof sub !== 'string') return undefined;
  return { principal: sub, routerKey: auth.clientId, ...(typeof replica === 'string' ? { replica } : {}) };
}

/** The caller's span attributes (none without a caller). */
export function callerSpanAttributes(caller: CallCaller | undefined): Attributes {
  if (!caller) return {};
  return { [ATTR_PRINCIPAL]: caller.principal, [ATTR_ROUTER_KEY]: caller.routerKey, ...(caller.replica !== undefined ? { [ATTR_ROUTER_REPLICA]: caller.replica } : {}) };
}

/** The caller's log fields (`principal` as on the router's lines, `router` the replica, `routerKey`). */
export function callerLogFields(caller: CallCaller | undefined): Record<string, string> {
  if (!caller) return {};
  return { principal: caller.principal, routerKey: caller.routerKey, ...(caller.replica !== undefined ? { router: caller.replica } : {}) };
}
