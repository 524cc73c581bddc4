import type { ControlRequest } from '@flotilla/protocol';
import type { SignatureVerifier } from '../signing/SignatureVerifier.js';

/** What {@link ControlAuthenticator} needs. */
export interface ControlAuthenticatorDeps {
  /** Public keys of the operators allowed to send control requests (read on every check, so it may change). */
  operators: () => ReadonlySet<string>;
  verifier: SignatureVerifier;
  /** This node's id: a request for another node is refused. */
  nodeId: string;
  /** A request whose `at` is further than this from the node's clock is refused, ms (default 60 s). */
  windowMs?: number;
  /** Most nonces remembered; past it new requests are refused until old ones leave the window (default 10,000). */
  maxNonces?: number;
  now?: () => number;
}

/** One control request as received. */
export interface ReceivedControl {
  subject: string;
  payload: Uint8Array;
  request: ControlRequest;
  /** `Flotilla-Signer` and `Flotilla-Sig` headers, if present. */
  signer: string | undefined;
  signature: string | undefined;
}

/**
 * Checks the operator credential of a control request (drain, status): signed by a trusted operator key
 * over its subject and payload, addressed to this node, made within the time window, and not seen before
 * (nonces are remembered for the window, bounded). Returns the reason for a refusal, or undefined.
 */
export class ControlAuthenticator {
  private readonly nonces = new Map<string, number>();
  private readonly windowMs: number;
  private readonly maxNonces: number;
  private readonly now: () => number;

  constructor(private readonly deps: ControlAuthenticatorDeps) {
    this.windowMs = deps.windowMs ?? 60_000;
    this.maxNonces = deps.maxNonces ?? 10_000;
    this.now = deps.now ?? Date.now;
  }

  check(received: ReceivedControl): string | undefined {
    const { request, signer, signature } = received;
    if (!signer || !signature) return 'unsigned control request: an operator credential is required';
    if (!this.deps.operators().has(signer)) return `signer ${signer} is not a trusted operator key`;
    if (!this.deps.verifier.verify(signer, received.subject, received.payload, signature)) return 'control request signature invalid';
    if (request.nodeId !== this.deps.nodeId) return `control request is for node ${request.nodeId ?? '(none)'}`;
    if (request.at === undefined || request.nonce === undefined) return 'control request lacks at/nonce';
    const now = this.now();
    if (Math.abs(now - request.at) > this.windowMs) return `control request time is ${Math.round((request.at - now) / 1000)} s off this node's clock (allowed ±${this.windowMs / 1000} s)`;
    this.prune(now);
    if (this.nonces.has(request.nonce)) return 'control request replayed (nonce already used)';
    if (this.nonces.size >= this.maxNonces) return 'too many control requests; try again shortly';
    this.nonces.set(request.nonce, request.at + this.windowMs);
    return undefined;
  }

  private prune(now: number): void {
    for (const [nonce, until] of this.nonces) if (until < now) this.nonces.delete(nonce);
  }
}
