import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@flotilla/telemetry';
import { AccessPolicy, ALLOW_ALL, holdsOpsPermission } from './AccessPolicy.js';
import { ApiKeyStore, looksLikeApiKey } from './ApiKeys.js';
import type { AuthFailure, FrontDoorObserver } from './AuthMetrics.js';
import type { Caller } from './Caller.js';
import { FrontDoorOptionsSchema, authConfigured, type FrontDoorOptions, type ResolvedFrontDoorOptions } from './FrontDoorOptions.js';
import { ANONYMOUS, type Identity } from './Identity.js';
import { IdentityLabels } from './IdentityLabels.js';
import { JwtVerifier } from './JwtVerifier.js';
import { PolicyFile } from './PolicyFile.js';

/** RFC 9728's well-known path. */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/** The verdict on one request's credential. */
export type Admission =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly status: 401 | 503; readonly message: string; readonly headers: Record<string, string> };

/** What a {@link FrontDoor} needs. */
export interface FrontDoorDeps {
  readonly options: FrontDoorOptions;
  readonly logger: Logger;
  readonly observer?: FrontDoorObserver;
  /** A reloaded policy file is in force (e.g. tell clients their lists changed). */
  onPolicyChange?(): void;
  /** How often the policy file is checked for changes, ms (default 2000). */
  readonly policyReloadEveryMs?: number;
}

/** Where the policy comes from: a file read again when it changes, or a document given once. */
type PolicySource = { readonly file: PolicyFile } | { readonly fixed: AccessPolicy } | undefined;

/**
 * The router's front door (MCP authorization spec 2025-11-25, resource-server side): finds the caller of
 * each `/mcp` request from its `Authorization: Bearer` credential (an OAuth JWT, checked against the
 * issuer's JWKS, or an API key), answers 401 with `WWW-Authenticate` pointing at the protected resource
 * metadata (RFC 9728) when there is none or it is bad, and gives each caller its grants under the access
 * policy. Open (everyone is `anonymous`, allowed everything the policy allows) when no credential kind is
 * configured.
 */
export class FrontDoor {
  private readonly options: ResolvedFrontDoorOptions;
  private readonly labels: IdentityLabels;
  private readonly grantsCache = new Map<string, Caller>();

  private constructor(
    private readonly deps: FrontDoorDeps,
    private readonly jwt: JwtVerifier | undefined,
    private readonly keys: ApiKeyStore | undefined,
    private readonly policy: PolicySource,
  ) {
    this.options = FrontDoorOptionsSchema.parse(deps.options);
    this.labels = new IdentityLabels(this.options.identityLabels);
  }

  /** Builds the front door: reads the key file and the policy (throwing a clear message when either is wrong). */
  static async create(deps: FrontDoorDeps): Promise<FrontDoor> {
    const parsed = FrontDoorOptionsSchema.safeParse(deps.options);
    if (!parsed.success) {
      throw new Error(`invalid auth options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(auth)'}: ${i.message}`).join('; ')}`);
    }
    const o = parsed.data;
    const jwt = o.jwt ? new JwtVerifier(o.jwt) : undefined;
    const keys = o.apiKeysFile ? await ApiKeyStore.load(o.apiKeysFile) : undefined;
    let door: FrontDoor | undefined;
    const policy: PolicySource = o.policyFile
      ? {
          file: await PolicyFile.load({
            path: o.policyFile,
            logger: deps.logger,
            ...(deps.policyReloadEveryMs !== undefined ? { reloadEveryMs: deps.policyReloadEveryMs } : {}),
            onReload: (result) => deps.observer?.policyReloaded?.(result),
            onChange: () => door?.policyChanged(),
          }),
        }
      : o.policy !== undefined
        ? { fixed: AccessPolicy.fromDocument(o.policy, 'auth.policy') }
        : undefined;
    door = new FrontDoor(deps, jwt, keys, policy);
    return door;
  }

  /** Whether requests need a credential. */
  get enforcing(): boolean {
    return authConfigured(this.deps.options);
  }

  /** Stops following the policy file. */
  stop(): void {
    if (this.policy && 'file' in this.policy) this.policy.file.stop();
  }

  /** Whether an access policy is in force. */
  get hasPolicy(): boolean {
    return this.policy !== undefined;
  }

  /**
   * Whether `identity` may use the operations endpoints: the policy says so (`allow.ops`, or the
   * `flotilla:ops` role or scope and no `deny.ops`); without a policy, holders of `flotilla:ops` only.
   */
  async allowsOps(identity: Identity): Promise<boolean> {
    const policy = await this.currentPolicy();
    return policy ? policy.allowsOps(identity) : holdsOpsPermission(identity);
  }

  /** What the front door does, for the start-up log line. */
  describe(): Record<string, unknown> {
    return {
      jwtIssuer: this.jwt?.issuer,
      apiKeys: this.keys?.size,
      policy: this.options.policyFile ?? (this.policy ? 'inline' : undefined),
      ...(this.options.policyFile ? { policyReload: 'on change' } : {}),
    };
  }

  /** The caller of `req`, or the answer refusing it. */
  async admit(req: IncomingMessage): Promise<Admission> {
    const policy = await this.currentPolicy();
    if (!this.enforcing) return { ok: true, caller: this.callerOf(policy, ANONYMOUS) };
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header) : null;
    if (!match) return this.refuse(req, 'missing', header ? 'The Authorization header must be "Bearer <token>"' : 'Authentication required', header !== undefined);
    const credential = match[1]!;
    if (this.keys && looksLikeApiKey(credential)) {
      const verdict = await this.keys.verify(credential);
      if (!verdict.ok) return this.refuse(req, 'invalid', verdict.description, true);
      return { ok: true, caller: this.callerOf(policy, verdict.identity, verdict.label) };
    }
    if (!this.jwt) return this.refuse(req, 'invalid', 'The bearer credential is not a known API key', true);
    const known = this.jwt.cached(credential);
    if (known) return { ok: true, caller: this.callerOf(policy, known) };
    const verdict = await this.jwt.verifyUncached(credential);
    if (verdict.ok) return { ok: true, caller: this.callerOf(policy, verdict.identity) };
    if (verdict.reason === 'unavailable') {
      this.deps.observer?.authFailed('unavailable');
      this.deps.logger.warn({ issuer: this.jwt.issuer, why: verdict.description }, 'cannot verify a bearer token now');
      return { ok: false, status: 503, message: `Service Unavailable: ${verdict.description}; retry`, headers: { 'retry-after': '5' } };
    }
    return this.refuse(req, 'invalid', verdict.description, true);
  }

  /** Serves the protected resource metadata (RFC 9728) at its well-known paths. */
  serveMetadata(req: IncomingMessage, res: ServerResponse): void {
    const resource = this.resourceUri(req);
    const body = {
      resource,
      ...(this.jwt ? { authorization_servers: [this.jwt.issuer] } : { authorization_servers: [] }),
      bearer_methods_supported: ['header'],
      resource_name: this.options.resourceName,
      ...(this.options.scopesSupported ? { scopes_supported: this.options.scopesSupported } : {}),
    };
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300', 'access-control-allow-origin': '*' });
    res.end(JSON.stringify(body));
  }

  /** The policy in force now (the file read again first when it may have changed). */
  private currentPolicy(): Promise<AccessPolicy | undefined> | AccessPolicy | undefined {
    if (!this.policy) return undefined;
    return 'file' in this.policy ? this.policy.file.current() : this.policy.fixed;
  }

  /** A reloaded policy is in force: grants are worked out again, and the router is told. */
  private policyChanged(): void {
    this.grantsCache.clear();
    this.deps.onPolicyChange?.();
  }

  /** The caller for `identity`, its grants worked out once per principal. */
  private callerOf(policy: AccessPolicy | undefined, identity: Identity, configuredLabel?: string): Caller {
    const known = this.grantsCache.get(identity.principal);
    if (known && sameGrantsBasis(known.identity, identity)) {
      this.deps.observer?.authenticated(known.label);
      return known.identity === identity ? known : { ...known, identity };
    }
    const grants = policy ? policy.grantsFor(identity) : ALLOW_ALL;
    const caller: Caller = { identity, grants, label: this.labels.labelOf(identity, configuredLabel ?? grants.label) };
    if (this.grantsCache.size >= 10_000) this.grantsCache.clear();
    this.grantsCache.set(identity.principal, caller);
    this.deps.observer?.authenticated(caller.label);
    return caller;
  }

  private refuse(req: IncomingMessage, reason: AuthFailure, description: string, invalidToken: boolean): Admission {
    this.deps.observer?.authFailed(reason);
    this.deps.logger.info({ reason, why: description, remote: req.socket.remoteAddress }, 'refused an unauthenticated request');
    const params = [`resource_metadata="${this.metadataUrl(req)}"`];
    if (this.options.scopesSupported?.length) params.push(`scope="${this.options.scopesSupported.join(' ')}"`);
    if (invalidToken) params.push('error="invalid_token"', `error_description="${description.replace(/["\\]/g, "'")}"`);
    return { ok: false, status: 401, message: `Unauthorized: ${description}`, headers: { 'www-authenticate': `Bearer ${params.join(', ')}` } };
  }

  /** The MCP endpoint's canonical URI. */
  private resourceUri(req: IncomingMessage): string {
    if (this.options.resource) return this.options.resource;
    return `http://${req.headers.host ?? 'localhost'}/mcp`;
  }

  /** Where the metadata of the resource is (RFC 9728 §3.1: the well-known path before the resource's path). */
  private metadataUrl(req: IncomingMessage): string {
    const url = new URL(this.resourceUri(req));
    const path = url.pathname === '/' ? '' : url.pathname;
    return `${url.origin}${PROTECTED_RESOURCE_PATH}${path}`;
  }
}

/** Grants depend on the principal, subject, scopes and roles; a token with other scopes gets its own. */
function sameGrantsBasis(a: Identity, b: Identity): boolean {
  return a.subject === b.subject && a.scopes.join(' ') === b.scopes.join(' ') && a.roles.join(' ') === b.roles.join(' ');
}

