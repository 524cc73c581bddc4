import type { MeshTokenIssuer } from '@flotilla/trust';
import type { MeshCredentialProvider, MeshRequest } from '../upstream/McpHttpChannel.js';

/** The tool a JSON-RPC message calls, when it is a `tools/call`. */
function toolOf(message: unknown): string | undefined {
  if (message === null || typeof message !== 'object') return undefined;
  const m = message as { method?: unknown; params?: { name?: unknown } };
  return m.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name : undefined;
}

/**
 * The router's {@link MeshCredentialProvider}: a mesh token per request, for the node's origin, the server
 * (the last segment of `/mcp/<server>`), on a `tools/call` the tool, and the client identity the session
 * speaks for (its subject; `router` when the router runs open).
 */
export class MeshTokenCredentials implements MeshCredentialProvider {
  constructor(private readonly issuer: MeshTokenIssuer) {}

  headers(request: MeshRequest): Promise<Record<string, string>> {
    const server = decodeURIComponent(request.path.split('?')[0]!.replace(/\/+$/, '').split('/').pop() ?? '');
    const tool = toolOf(request.message);
    return this.issuer.headers({ origin: request.origin, server, ...(tool ? { tool } : {}), ...(request.identity !== undefined ? { identity: request.identity } : {}) });
  }
}
