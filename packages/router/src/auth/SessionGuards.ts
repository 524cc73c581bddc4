import { FlotillaErrorCode } from '@flotilla/protocol';
import { JsonRpcError } from '../errors/JsonRpcError.js';
import type { FairScheduler } from '../limits/FairScheduler.js';
import { rateLimited } from '../limits/RateLimitedError.js';
import type { TokenBuckets } from '../limits/TokenBuckets.js';
import type { SessionContext } from '../front/SessionContext.js';
import { routeResource } from '../front/routeResource.js';
import type { AccessKind } from './AccessPolicy.js';
import type { FrontDoorObserver } from './AuthMetrics.js';
import type { Caller } from './Caller.js';

/** Requests that are forwarded to a node, and so take a slot of the fair queue. */
const FORWARDED = new Set(['tools/call', 'prompts/get', 'resources/read', 'completion/complete']);

/** What {@link SessionGuards} needs; every part is optional (absent: that check is off). */
export interface SessionGuardsDeps {
  /** Whether an access policy is in force (else grants are not checked per request). */
  readonly policy: boolean;
  readonly scheduler?: FairScheduler;
  readonly clientRate?: TokenBuckets;
  readonly sessionRate?: TokenBuckets;
  readonly observer?: FrontDoorObserver;
}

/**
 * What every request of a client session passes before its handler runs: the client's and the session's
 * rate limits, the access policy (a tool, prompt or resource the caller may not use gets AccessDenied,
 * -32019, and is counted), and for requests forwarded to nodes, a slot of the router's fair queue.
 */
export class SessionGuards {
  constructor(private readonly deps: SessionGuardsDeps) {}

  /** The key limits are kept under: the principal, or the session when the caller is anonymous. */
  static clientKey(caller: Caller | undefined, sid: string): string {
    return caller && caller.identity.kind !== 'anonymous' ? caller.identity.principal : `session:${sid}`;
  }

  install(session: SessionContext): void {
    const { scheduler, clientRate, sessionRate, observer } = this.deps;
    session.methods.guard(async (method, params, request, next) => {
      const caller = session.caller;
      const label = caller?.label ?? 'anonymous';
      const client = SessionGuards.clientKey(caller, session.sid);
      if (sessionRate) {
        const wait = sessionRate.take(session.sid);
        if (wait > 0) {
          observer?.rateLimited(label, 'session_rate');
          throw rateLimited('session_rate', "Too many requests: over this session's rate limit; retry later", wait);
        }
      }
      if (clientRate) {
        const wait = clientRate.take(client);
        if (wait > 0) {
          observer?.rateLimited(label, 'client_rate');
          throw rateLimited('client_rate', "Too many requests: over this client's rate limit; retry later", wait);
        }
      }
      if (this.deps.policy && caller) await this.checkAccess(session, caller, method, params);
      if (!scheduler || !FORWARDED.has(method)) return next();
      let release;
      try {
        release = await scheduler.acquire(client, session.sid, request.signal);
      } catch (err) {
        if (err instanceof JsonRpcError) observer?.rateLimited(label, String((err.data as { limit?: string } | undefined)?.limit ?? 'queue'));
        throw err;
      }
      try {
        return await next();
      } finally {
        release();
      }
    });
  }

  private async checkAccess(session: SessionContext, caller: Caller, method: string, params: unknown): Promise<void> {
    const p = params as Record<string, unknown>;
    const deny = (kind: AccessKind, name: string): never => {
      this.deps.observer?.denied(caller.label, kind);
      session.logger.warn({ principal: caller.identity.principal, kind, name, method }, 'access denied by policy');
      throw new JsonRpcError(FlotillaErrorCode.AccessDenied, `Access denied: ${caller.identity.subject} may not use ${kind} ${name}`, { kind, name });
    };
    const checkResource = async (uri: string): Promise<void> => {
      let server: string;
      try {
        server = (await routeResource(session, uri)).server;
      } catch {
        return; // Unknown: the handler answers that.
      }
      if (!caller.grants.allows('resource', server, uri)) deny('resource', uri);
    };
    switch (method) {
      case 'tools/call': {
        const tool = await session.view.tool(String(p['name']));
        if (tool && !caller.grants.allows('tool', tool.server, tool.name)) deny('tool', tool.name);
        return;
      }
      case 'prompts/get': {
        const prompt = await session.view.prompt(String(p['name']));
        if (prompt && !caller.grants.allows('prompt', prompt.server, prompt.name)) deny('prompt', prompt.name);
        return;
      }
      case 'resources/read':
      case 'resources/subscribe':
        return checkResource(String(p['uri']));
      case 'completion/complete': {
        const ref = p['ref'] as { type?: string; name?: string; uri?: string } | undefined;
        if (ref?.type === 'ref/prompt' && ref.name !== undefined) {
          const prompt = await session.view.prompt(ref.name);
          if (prompt && !caller.grants.allows('prompt', prompt.server, prompt.name)) deny('prompt', prompt.name);
        } else if (ref?.type === 'ref/resource' && ref.uri !== undefined) {
          const template = session.services.catalog.resourceTemplate(ref.uri);
          if (template && !caller.grants.allows('resource', template.server, ref.uri)) deny('resource', ref.uri);
          else if (!template) await checkResource(ref.uri);
        }
        return;
      }
      default:
        return;
    }
  }
}
