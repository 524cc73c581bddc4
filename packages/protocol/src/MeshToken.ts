import { z } from 'zod';

/** JWT `typ` header of a mesh token. */
export const MESH_TOKEN_TYPE = 'flotilla-mesh+jwt';

/**
 * Claims of the short-lived token a router sends with every request to an agent (`Authorization: Bearer`),
 * signed (JWS EdDSA) by the router's mesh key; the JWT `kid` header is that key's NKey public key.
 */
export const MeshTokenClaimsSchema = z.object({
  /** The router's mesh key (same as `kid`). */
  iss: z.string().min(1),
  /** The agent the token is for: its announced base URL (`mcpBaseUrl`), so a token for one node is useless on another. */
  aud: z.string().min(1),
  /** The hosted server the request goes to. */
  srv: z.string().min(1).max(48),
  /** The tool, on a `tools/call`. */
  tool: z.string().min(1).max(256).optional(),
  /** Who the router speaks for (the client identity), when the router knows it. */
  sub: z.string().min(1).max(256).optional(),
  /** The router replica that sent the request (its tag), when the router says. */
  rep: z.string().min(1).max(64).optional(),
  iat: z.number().int(),
  exp: z.number().int(),
});
export type MeshTokenClaims = z.infer<typeof MeshTokenClaimsSchema>;
