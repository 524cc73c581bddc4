/** Sessions other router replicas hold, by principal (see `ReplicaSessionCounts`). */
export interface RemoteSessionCounts {
  /** Sessions `principal` holds on the other live replicas, as they last said. */
  elsewhere(principal: string): number;
}

/** What an {@link IdentitySessions} may use besides its own counts. */
export interface IdentitySessionsDeps {
  /** The other replicas' counts: the cap is mesh-wide with them, per replica without. */
  readonly remote?: RemoteSessionCounts;
  /** This replica's counts changed (so it can tell the others at once). */
  onChange?(): void;
}

/**
 * Client sessions by principal, for the cap on sessions per identity: this replica's own (exact), plus
 * what the other replicas last said they hold (eventually consistent). Only identities that authenticated
 * are counted (an open router has one anonymous identity shared by everyone; its sessions are bounded by
 * the router's session limit).
 */
export class IdentitySessions {
  private readonly byPrincipal = new Map<string, Set<string>>();

  constructor(
    readonly max: number,
    private readonly deps: IdentitySessionsDeps = {},
  ) {}

  /** Whether `principal` may open another session (counting every live replica's). */
  mayOpen(principal: string): boolean {
    return this.count(principal) < this.max;
  }

  /** Sessions of `principal` here and on the other live replicas. */
  count(principal: string): number {
    return (this.byPrincipal.get(principal)?.size ?? 0) + (this.deps.remote?.elsewhere(principal) ?? 0);
  }

  /** This replica's own sessions by principal. */
  local(): Map<string, number> {
    return new Map([...this.byPrincipal].map(([principal, sids]) => [principal, sids.size]));
  }

  add(principal: string, sid: string): void {
    let sids = this.byPrincipal.get(principal);
    if (!sids) this.byPrincipal.set(principal, (sids = new Set()));
    if (sids.has(sid)) return;
    sids.add(sid);
    this.deps.onChange?.();
  }

  remove(principal: string, sid: string): void {
    const sids = this.byPrincipal.get(principal);
    if (!sids?.delete(sid)) return;
    if (sids.size === 0) this.byPrincipal.delete(principal);
    this.deps.onChange?.();
  }
}
