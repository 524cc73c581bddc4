import type { Grants } from './AccessPolicy.js';
import type { Identity } from './Identity.js';

/** An authenticated caller as the rest of the router sees it. */
export interface Caller {
  readonly identity: Identity;
  /** Its metrics label (bounded; see `IdentityLabels`). */
  readonly label: string;
  /** What it may use. */
  readonly grants: Grants;
}
