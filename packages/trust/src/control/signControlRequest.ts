import { randomBytes } from 'node:crypto';
import { ControlRequestSchema, SIGNATURE_HEADER, SIGNER_HEADER, encodeJson, type ControlRequest } from '@flotilla/protocol';
import type { Signer } from '../signing/Signer.js';

/** A control request ready to send: the payload and the headers that authenticate it. */
export interface SignedControlRequest {
  payload: Uint8Array;
  headers: Record<string, string>;
}

/**
 * Signs a control request for node `nodeId` on `subject` with an operator key: the request gets the node
 * id, the time and a random nonce, and the signature covers the subject and the payload.
 */
export function signControlRequest(signer: Signer, subject: string, nodeId: string, request: ControlRequest, now: number = Date.now()): SignedControlRequest {
  const full = ControlRequestSchema.parse({ ...request, nodeId, at: now, nonce: randomBytes(12).toString('base64url') });
  const payload = encodeJson(full);
  return { payload, headers: { [SIGNER_HEADER]: signer.publicKey, [SIGNATURE_HEADER]: signer.sign(subject, payload) } };
}
