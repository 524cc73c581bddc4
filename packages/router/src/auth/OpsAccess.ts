import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import { sendJson } from '../front/JsonRpcHttpError.js';
import { OPS_PERMISSION } from './AccessPolicy.js';
import type { FrontDoor } from './FrontDoor.js';
import type { Identity } from './Identity.js';
import { cookieValue, OPS_COOKIE, type OpsCookie } from './OpsCookie.js';

/** What {@link OpsAccess} needs. */
export interface OpsAccessDeps {
  readonly frontDoor: FrontDoor;
  readonly cookie: OpsCookie;
  readonly logger: Logger;
}

/** The verdict on a request to an operations endpoint. */
export type OpsVerdict =
  | { readonly ok: true; readonly identity: Identity | undefined }
  | { readonly ok: false; readonly status: 401 | 403 | 503; readonly body: Record<string, unknown>; readonly headers: Record<string, string> };

/**
 * Who may use the router's operations endpoints (`/api/v1/*`, the dashboard's live stream) when the front
 * door authenticates: a bearer credential (JWT or API key, checked as on `/mcp`) or the dashboard's sign-in
 * cookie, of an identity the access policy allows `ops` (see `AccessPolicy.allowsOps`). No credential:
 * 401 with `WWW-Authenticate`; a credential without the permission: 403 saying what is missing. Open (as
 * before) when the front door is open.
 */
export class OpsAccess {
  constructor(private readonly deps: OpsAccessDeps) {}

  /** Whether operations endpoints need a credential (the front door authenticates). */
  get enforcing(): boolean {
    return this.deps.frontDoor.enforcing;
  }

  /** The verdict on `req` (the cookie first, else its bearer credential). */
  async check(req: IncomingMessage): Promise<OpsVerdict> {
    if (!this.enforcing) return { ok: true, identity: undefined };
    const cookie = cookieValue(req.headers.cookie, OPS_COOKIE);
    const fromCookie = cookie && req.headers.authorization === undefined ? await this.deps.cookie.open(cookie) : undefined;
    if (fromCookie) return this.authorize(fromCookie);
    const admission = await this.deps.frontDoor.admit(req);
    if (!admission.ok) return { ok: false, status: admission.status, body: { error: admission.status === 401 ? 'unauthorized' : 'unavailable', message: admission.message }, headers: admission.headers };
    return this.authorize(admission.caller.identity);
  }

  /** Answers a refusal. */
  refuse(res: ServerResponse, verdict: Extract<OpsVerdict, { ok: false }>): void {
    sendJson(res, verdict.status, verdict.body, verdict.headers);
  }

  /**
   * `POST /dashboard/session` with a bearer credential of an identity allowed `ops`: sets the sign-in
   * cookie (HttpOnly, SameSite=Strict) for the dashboard page. `DELETE` clears it.
   */
  async session(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    const secure = (req.headers['x-forwarded-proto'] ?? '') === 'https' || 'encrypted' in req.socket ? '; Secure' : '';
    if (req.method === 'DELETE') {
      res.writeHead(204, { 'set-cookie': `${OPS_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure}`, 'cache-control': 'no-store' }).end();
      return;
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: `Method not allowed: ${req.method ?? ''}; use POST (sign in) or DELETE (sign out)` }, { allow: 'POST, DELETE' });
    const admission = await this.deps.frontDoor.admit(req);
    if (!admission.ok) return sendJson(res, admission.status, { error: 'unauthorized', message: admission.message }, admission.headers);
    const verdict = await this.authorize(admission.caller.identity);
    if (!verdict.ok) return this.refuse(res, verdict);
    const issued = await this.deps.cookie.issue(admission.caller.identity);
    const maxAge = Math.max(0, Math.floor((issued.expiresAt - Date.now()) / 1000));
    this.deps.logger.info({ principal: admission.caller.identity.principal, expiresAt: new Date(issued.expiresAt).toISOString() }, 'dashboard sign-in');
    sendJson(res, 200, { principal: admission.caller.identity.principal, expiresAt: issued.expiresAt }, {
      'set-cookie': `${OPS_COOKIE}=${issued.value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure}`,
      'cache-control': 'no-store',
    });
  }

  private async authorize(identity: Identity): Promise<OpsVerdict> {
    if (await this.deps.frontDoor.allowsOps(identity)) return { ok: true, identity };
    this.deps.logger.info({ principal: identity.principal }, 'refused an operations request: the identity lacks the ops permission');
    return {
      ok: false,
      status: 403,
      body: {
        error: 'forbidden',
        message: `Forbidden: ${identity.principal} may not use the operations endpoints; it needs the "${OPS_PERMISSION}" role or scope, or an access policy rule with "allow": { "ops": true }`,
        missing: OPS_PERMISSION,
        principal: identity.principal,
      },
      headers: {},
    };
  }
}
