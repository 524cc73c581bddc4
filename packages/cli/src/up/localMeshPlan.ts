import type { ServerAffinity } from '@flotilla/protocol';

/** One agent of the local mesh that `flotilla up` starts. */
export interface LocalAgentPlan {
  nodeId: string;
  servers: string[];
  /** Whether it also mounts the third-party stdio server of `localMeshMount.ts` from the mesh's servers.json. */
  mount: boolean;
}

/**
 * The example fleet: three nodes, with `echo` and `slow` on every node (so calls spread and fail over),
 * the other examples on one or two nodes each, and `stateful` on two (so a client's session state can be
 * seen staying on one node, or not). Two nodes also mount a third-party stdio server (`files`, the npm
 * filesystem server), so a new user sees a mount among the tools and its calls spread and fail over too.
 */
export const LOCAL_MESH_AGENTS: LocalAgentPlan[] = [
  { nodeId: 'node-1', servers: ['echo', 'slow', 'docs', 'stateful'], mount: true },
  { nodeId: 'node-2', servers: ['echo', 'slow', 'failing', 'stateful'], mount: true },
  { nodeId: 'node-3', servers: ['echo', 'slow', 'interactive', 'docs'], mount: false },
];

/**
 * Affinity of the example servers in the local mesh (`flotilla up --affinity` overrides it). `stateful`
 * keeps everything per session, so its default is `sticky`; the others are `none`.
 */
export const LOCAL_MESH_AFFINITY: Readonly<Record<string, ServerAffinity>> = { stateful: 'sticky' };

/** The affinity of each server of the local mesh: the defaults above with `overrides` applied. */
export function localMeshAffinity(overrides: Record<string, ServerAffinity>): Record<string, ServerAffinity> {
  const hosted = new Set(LOCAL_MESH_AGENTS.flatMap((a) => a.servers));
  const unknown = Object.keys(overrides).filter((name) => !hosted.has(name));
  if (unknown.length > 0) throw new Error(`--affinity names ${unknown.map((n) => `"${n}"`).join(', ')}, not in the local mesh (servers: ${[...hosted].join(', ')})`);
  return { ...LOCAL_MESH_AFFINITY, ...overrides };
}
