/** One agent of the local mesh that `flotilla up` starts. */
export interface LocalAgentPlan {
  nodeId: string;
  servers: string[];
}

/**
 * The example fleet: three nodes, with `echo` and `slow` on every node (so calls spread and fail over)
 * and the other examples on one or two nodes each.
 */
export const LOCAL_MESH_AGENTS: LocalAgentPlan[] = [
  { nodeId: 'node-1', servers: ['echo', 'slow', 'docs'] },
  { nodeId: 'node-2', servers: ['echo', 'slow', 'failing'] },
  { nodeId: 'node-3', servers: ['echo', 'slow', 'interactive', 'docs'] },
];
