import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { ClientRequest } from '@modelcontextprotocol/sdk/types.js';
import type { ReplicaView } from '../balancer/Balancer.js';
import type { UpstreamRequestOptions } from './UpstreamSession.js';

/** What the forwarder needs of one replica ({@link NodeEndpoint} in the router; fakes in tests). */
export interface ForwardTarget extends ReplicaView {
  /** Whether new calls for `server` (and `tool`, `<server>/<tool>`) may be placed here now. */
  canServe(server: string, tool?: string): boolean;
  /**
   * Runs one request here. Rejects with `UpstreamFailure` (node trouble), `JsonRpcError` (the server's own
   * answer) or `CallCancelledError`.
   */
  call<S extends AnySchema>(server: string, request: ClientRequest, schema: S, options: UpstreamRequestOptions): Promise<SchemaOutput<S>>;
  /** p95 of the tool's recent response times here as this router measured them, when known. */
  latencyP95Ms(tool: string): number | undefined;
}
