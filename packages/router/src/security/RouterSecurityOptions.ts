/**
 * What a router trusts and signs with. Omitted parts are off, and the router says so at start: the library
 * and tests may run open; `flotilla router` requires the trust and mesh parts unless told `--insecure`.
 */
export interface RouterSecurityOptions {
  /** Public keys of the issuers whose node credentials make a registry record trusted. */
  issuers?: string[];
  /** A file of issuer public keys, re-read when it changes. */
  issuersFile?: string;
  /**
   * Accept unsigned records and reports (older agents, agents without a node key): the operator's explicit
   * opt-out, logged at start. Signed records are still checked when issuers are configured. Default: true
   * when no issuer is configured (open), false otherwise.
   */
  allowUnsigned?: boolean;
  /** The router's mesh key (NKey seed): signs the tokens agents require. */
  meshSeed?: string;
  /** A file holding the mesh key's seed, re-read when it changes (rotation without restart). */
  meshSeedFile?: string;
}
