/**
 * Client sessions on this replica by principal, for the cap on sessions per identity. Only identities
 * that authenticated are counted (an open router has one anonymous identity shared by everyone; its
 * sessions are bounded by the router's session limit).
 */
export class IdentitySessions {
  private readonly byPrincipal = new Map<string, Set<string>>();

  constructor(readonly max: number) {}

  /** Whether `principal` may open another session. */
  mayOpen(principal: string): boolean {
    return (this.byPrincipal.get(principal)?.size ?? 0) < this.max;
  }

  count(principal: string): number {
    return this.byPrincipal.get(principal)?.size ?? 0;
  }

  add(principal: string, sid: string): void {
    let sids = this.byPrincipal.get(principal);
    if (!sids) this.byPrincipal.set(principal, (sids = new Set()));
    sids.add(sid);
  }

  remove(principal: string, sid: string): void {
    const sids = this.byPrincipal.get(principal);
    if (!sids) return;
    sids.delete(sid);
    if (sids.size === 0) this.byPrincipal.delete(principal);
  }
}
