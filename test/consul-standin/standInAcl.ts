/** Rights of a stand-in ACL token: `write` may register and update services, `read` may only read. */
export type StandInTokenRights = 'read' | 'write';

/** ACL configuration of the stand-in; when absent, ACLs are disabled and everything is allowed (Consul's default). */
export interface StandInAclConfig {
  /** Secret id → rights. Requests without a token are anonymous and have no rights (default-deny). */
  tokens: Record<string, StandInTokenRights>;
}

/** Accessor id Consul reports for the anonymous token. */
export const ANONYMOUS_ACCESSOR_ID = '00000000-0000-0000-0000-000000000002';

/** Outcome of resolving a request's token. */
export type ResolvedToken =
  | { kind: 'disabled' }
  | { kind: 'unknown' }
  | { kind: 'known'; accessorId: string; rights: StandInTokenRights | 'none' };

/** Resolves a secret (from `X-Consul-Token` or `Authorization: Bearer`) against the configuration. */
export function resolveToken(config: StandInAclConfig | undefined, secret: string | undefined): ResolvedToken {
  if (!config) return { kind: 'disabled' };
  if (!secret) return { kind: 'known', accessorId: ANONYMOUS_ACCESSOR_ID, rights: 'none' };
  const rights = config.tokens[secret];
  if (!rights) return { kind: 'unknown' };
  // A stable fake accessor id, so messages look like Consul's without exposing the secret.
  const accessorId = `standin-${Buffer.from(secret).toString('hex').slice(0, 8)}`;
  return { kind: 'known', accessorId, rights };
}

/** True when the token may read (service:read, node:read) the catalog. */
export function mayRead(token: ResolvedToken): boolean {
  return token.kind === 'disabled' || (token.kind === 'known' && token.rights !== 'none');
}

/** True when the token has service:write. */
export function mayWrite(token: ResolvedToken): boolean {
  return token.kind === 'disabled' || (token.kind === 'known' && token.rights === 'write');
}
