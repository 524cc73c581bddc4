/**
 * What an agent trusts and signs with. Each part is off when not given, and the agent says so at start:
 * the library and tests may run an open node; `flotilla agent` requires every part unless told `--insecure`.
 */
export interface AgentSecurityOptions {
  /**
   * The node's NKey seed: signs its registry record and every load, progress and event message. Needs
   * `nodeCredential`. Without it the node publishes unsigned, which routers accept only when opted out.
   */
  nodeSeed?: string;
  /** The operator-issued credential binding this node's key to its node id (`flotilla keys issue`). */
  nodeCredential?: string;
  /** Operator public keys whose signed control requests (drain, status) this node obeys. */
  operatorKeys?: string[];
  /** A file of operator public keys, re-read when it changes. */
  operatorKeysFile?: string;
  /** Router mesh public keys whose tokens this node accepts on its MCP endpoints. */
  meshKeys?: string[];
  /** A file of router mesh public keys, re-read when it changes (rotation without restart). */
  meshKeysFile?: string;
  /** Serve `/metrics` without a mesh token (e.g. for a Prometheus scraper on a trusted network). */
  openMetrics?: boolean;
}
