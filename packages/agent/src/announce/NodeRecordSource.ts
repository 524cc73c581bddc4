import { PROTOCOL_VERSION, type HostedServer, type NodeRecord } from '@flotilla/protocol';

/** The fixed parts of a node's registry record. */
export interface NodeIdentity {
  nodeId: string;
  instanceId: string;
  mcpBaseUrl: string;
  version: string;
  zone: string | undefined;
  healthAddress: string;
  capacity: number;
  startedAt: number;
  /** The node's signing key and its credential, when it signs. */
  keys?: { nodeKey: string; credential: string } | undefined;
}

/** Builds the node's current registry record: fixed identity plus the live server list and draining flag. */
export class NodeRecordSource {
  constructor(
    private readonly identity: NodeIdentity,
    private readonly servers: () => HostedServer[],
    private readonly draining: () => boolean,
  ) {}

  record(): NodeRecord {
    const i = this.identity;
    return {
      v: PROTOCOL_VERSION,
      nodeId: i.nodeId,
      instanceId: i.instanceId,
      mcpBaseUrl: i.mcpBaseUrl,
      servers: this.servers(),
      version: i.version,
      ...(i.zone ? { zone: i.zone } : {}),
      healthAddress: i.healthAddress,
      capacity: i.capacity,
      startedAt: i.startedAt,
      draining: this.draining(),
      ...(i.keys ? { nodeKey: i.keys.nodeKey, credential: i.keys.credential } : {}),
    };
  }
}
