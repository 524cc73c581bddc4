import type { IncomingMessage } from 'node:http';
import type { MeshTokenClaims } from '@flotilla/protocol';
import type { MeshTokenVerifier } from '@flotilla/trust';

/** A request's mesh credential: accepted with its claims, or refused with the reason. */
export type MeshGrant = { ok: true; claims: MeshTokenClaims; token: string } | { ok: false; reason: string };

/**
 * Checks the mesh credential of a request to the agent: `Authorization: Bearer <mesh token>`, verified by
 * the {@link MeshTokenVerifier}, and for an MCP endpoint issued for that server.
 */
export class MeshGate {
  constructor(private readonly verifier: MeshTokenVerifier) {}

  async check(req: IncomingMessage, server: string | undefined): Promise<MeshGrant> {
    const header = req.headers.authorization;
    if (!header) return { ok: false, reason: 'a mesh credential is required (Authorization: Bearer <mesh token>); only routers of this mesh may call this node' };
    const match = /^Bearer\s+([A-Za-z0-9_.-]{1,4096})$/.exec(header);
    if (!match) return { ok: false, reason: 'Authorization must be "Bearer <mesh token>"' };
    const token = match[1]!;
    const result = await this.verifier.check(token);
    if (!result.ok) return result;
    if (server !== undefined && result.claims.srv !== server) return { ok: false, reason: `mesh token is for server "${result.claims.srv}", not "${server}"` };
    return { ok: true, claims: result.claims, token };
  }
}
