import type { RegisteredNode, Registry, RegistryWatch } from '@flotilla/registry';
import { waitUntil } from './agentFixture.js';

/**
 * The live nodes of a registry as its watch reports them. Tests use the watch rather than `list()`:
 * NATS KV's key listing only ends once its consumer sees no pending update, which can take long while
 * agents heartbeat every 250 ms.
 */
export class RegistryView {
  nodes: RegisteredNode[] = [];
  private readonly watch: RegistryWatch;
  private readonly seen = new Set<string>();
  private readonly vanished = new Set<string>();

  constructor(registry: Registry) {
    this.watch = registry.watch((event) => {
      if (event.type !== 'snapshot') return;
      this.nodes = event.nodes;
      const present = new Set(event.nodes.map((n) => n.record.nodeId));
      for (const id of this.seen) if (!present.has(id)) this.vanished.add(id);
      for (const id of present) this.seen.add(id);
    });
  }

  /** True when the node left the live view at some point after it was first seen. */
  hasVanished(nodeId: string): boolean {
    return this.vanished.has(nodeId);
  }

  node(nodeId: string): RegisteredNode | undefined {
    return this.nodes.find((n) => n.record.nodeId === nodeId);
  }

  async waitFor(match: (nodes: RegisteredNode[]) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    await waitUntil(() => match(this.nodes), timeoutMs, what);
  }

  async waitForNode(nodeId: string, match: (n: RegisteredNode) => boolean = () => true, timeoutMs = 20_000): Promise<RegisteredNode> {
    await this.waitFor((nodes) => nodes.some((n) => n.record.nodeId === nodeId && match(n)), `node ${nodeId} in the registry`, timeoutMs);
    return this.node(nodeId)!;
  }

  async waitForGone(nodeId: string, timeoutMs = 20_000): Promise<void> {
    await this.waitFor((nodes) => !nodes.some((n) => n.record.nodeId === nodeId), `node ${nodeId} to leave the registry`, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.watch.stop();
  }
}
