import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../../errors/JsonRpcError.js';

/** A client's answer to a request the router sent it. */
export interface ClientResponse {
  readonly id: string | number;
  readonly result?: Record<string, unknown>;
  readonly error?: { readonly code: number; readonly message: string; readonly data?: unknown };
}

interface Pending {
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
}

/**
 * Requests the router sends one client (sampling, elicitation, roots/list, ping), awaiting the client's
 * answers. Ids are `<replica>:<n>`: the client's answer may reach another router replica, which sends it
 * on to the replica the id names.
 */
export class OutboundRequests {
  private readonly pending = new Map<string, Pending>();
  private next = 1;

  constructor(
    /** This replica's tag, the prefix of every id it gives. */
    readonly replicaTag: string,
  ) {}

  /** Whether `id` was given by this replica (possibly for another session). */
  static replicaOf(id: string | number): string | undefined {
    if (typeof id !== 'string') return undefined;
    const colon = id.lastIndexOf(':');
    return colon > 0 ? id.slice(0, colon) : undefined;
  }

  /**
   * Registers a request and returns its id and its answer. The answer rejects when `signal` aborts or
   * `timeoutMs` passes (the caller then tells the client to stop with `notifications/cancelled`).
   */
  create(timeoutMs: number, signal?: AbortSignal): { id: string; answer: Promise<Record<string, unknown>> } {
    const id = `${this.replicaTag}:${this.next++}`;
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => settle(new JsonRpcError(ErrorCode.RequestTimeout, `the client did not answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      const onAbort = (): void => settle(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      const settle = (error?: Error, result?: Record<string, unknown>): void => {
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(result ?? {});
      };
      this.pending.set(id, { resolve: (r) => settle(undefined, r), reject: (e) => settle(e) });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    return { id, answer };
  }

  /** Settles the request a client answer is for; false when no request of this replica waits for it. */
  settle(response: ClientResponse): boolean {
    const pending = this.pending.get(String(response.id));
    if (!pending) return false;
    if (response.error) pending.reject(new JsonRpcError(response.error.code, response.error.message, response.error.data));
    else pending.resolve(response.result ?? {});
    return true;
  }

  /** Fails every request still waiting (the session closed). */
  failAll(reason: string): void {
    for (const p of [...this.pending.values()]) p.reject(new JsonRpcError(ErrorCode.ConnectionClosed, reason));
  }
}
