import type { Identity } from './Identity.js';

/** Label of identities past the first `max` seen without a configured label. */
export const OTHER_LABEL = 'other';

/**
 * The `identity` label of the router's metrics, bounded: a label the operator configured (an API key's or
 * a policy rule's `label`) when there is one; else the principal itself for the first `max` principals
 * seen, and `other` for everyone after them. So a flood of new identities never grows the series count.
 */
export class IdentityLabels {
  private readonly seen = new Set<string>();

  constructor(private readonly max = 20) {}

  labelOf(identity: Identity, configured?: string): string {
    if (configured !== undefined) return configured;
    if (this.seen.has(identity.principal)) return identity.principal;
    if (this.seen.size >= this.max) return OTHER_LABEL;
    this.seen.add(identity.principal);
    return identity.principal;
  }
}
