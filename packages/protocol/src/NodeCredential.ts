import { z } from 'zod';
import { NodeIdSchema } from './NodeRecord.js';
import { NKeyPublicSchema } from './signing.js';
import { PROTOCOL_VERSION } from './version.js';

/**
 * What an operator's issuing key vouches for: that the NKey `nodeKey` speaks for node `nodeId`, from `iat`
 * until `exp` (epoch seconds). A node puts its credential in its registry record; routers trust a record
 * (and the reports signed with its key) only with a credential from an issuer they are configured to
 * trust.
 */
export const NodeCredentialClaimsSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  typ: z.literal('flotilla/node'),
  nodeId: NodeIdSchema,
  nodeKey: NKeyPublicSchema,
  /** Public key of the issuing key. */
  iss: NKeyPublicSchema,
  iat: z.number().int().nonnegative(),
  /** Expiry, epoch seconds; absent means the credential lasts until its issuer is no longer trusted. */
  exp: z.number().int().positive().optional(),
});
export type NodeCredentialClaims = z.infer<typeof NodeCredentialClaimsSchema>;

/**
 * A node credential on the wire: `<base64url of the claims' JSON>.<base64url of the issuer's ed25519
 * signature over signingInput(NODE_CREDENTIAL_CONTEXT, claims JSON bytes)>`.
 */
export const NodeCredentialSchema = z.string().max(2048).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/, 'not a node credential (<claims>.<signature>)');
