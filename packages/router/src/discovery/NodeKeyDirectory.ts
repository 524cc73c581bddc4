/**
 * The signing keys of the nodes this router accepted from the registry, shared by discovery (which fills
 * it as nodes join and leave) and the load view (which checks reports against it). A node is here exactly
 * while it is in the accepted view, so per-node report state can never outgrow the fleet: reports for a
 * node id not here are dropped before anything is stored.
 */
export class NodeKeyDirectory {
  /** nodeId → its key, or null for a node accepted unsigned (the operator's opt-out). */
  private readonly keys = new Map<string, string | null>();

  /** Records an accepted node and its key (null: unsigned, accepted by opt-out). */
  set(nodeId: string, key: string | null): void {
    this.keys.set(nodeId, key);
  }

  delete(nodeId: string): void {
    this.keys.delete(nodeId);
  }

  /** Keeps only the nodes in `accepted` (the latest accepted view). */
  retain(accepted: ReadonlySet<string>): void {
    for (const id of this.keys.keys()) if (!accepted.has(id)) this.keys.delete(id);
  }

  /** The node's key; null when accepted unsigned; undefined when the node is not in the accepted view. */
  keyOf(nodeId: string): string | null | undefined {
    return this.keys.get(nodeId);
  }

  get size(): number {
    return this.keys.size;
  }
}
