import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { ClientRequest } from '@modelcontextprotocol/sdk/types.js';
import type { ReplicaView } from '../balancer/Balancer.js';
import type { UpstreamRequestOptions } from './UpstreamSession.js';

/** Why a replica takes no new calls for a server or tool right now. */
export type Unavailability = 'left' | 'draining' | 'breaker_open' | 'tool_breaker_open' | 'disconnected';

/** What the forwarder needs of one replica ({@link NodeEndpoint} in the router; fakes in tests). */
export interface ForwardTarget extends ReplicaView {
  /**
   * Why new calls for `server` (and `tool`, `<server>/<tool>`) may not be placed here now; undefined when
   * they may.
   */
  unavailability(server: string, tool?: string): Unavailability | undefined;
  /** Host and port of the node's MCP endpoint, for spans. */
  readonly address?: { readonly host: string; readonly port: number };
  /**
   * Runs one request here. Rejects with `UpstreamFailure` (node trouble), `JsonRpcError` (the server's own
   * answer) or `CallCancelledError`.
   */
  call<S extends AnySchema>(server: string, request: ClientRequest, schema: S, options: UpstreamRequestOptions): Promise<SchemaOutput<S>>;
  /** p95 of the tool's recent response times here as this router measured them, when known. */
  latencyP95Ms(tool: string): number | undefined;
}
