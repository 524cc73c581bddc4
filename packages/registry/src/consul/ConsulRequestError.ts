/** How a Consul request failed, which decides what the caller does about it. */
export type ConsulFailureKind =
  /** No answer: connection refused or reset, DNS failure, timeout. Retry with backoff. */
  | 'unreachable'
  /** Consul answered 5xx or 429 (no leader, rate limited, internal error). Retry with backoff. */
  | 'server-error'
  /** Consul answered 403: the ACL token is missing, unknown or lacks a permission. */
  | 'forbidden'
  /** Consul answered 404: the service or check is not known to the agent. */
  | 'not-found'
  /** Consul refused the request (other 4xx), e.g. an invalid definition. Retrying will not help. */
  | 'rejected'
  /** Consul answered 2xx with a body we could not read (not JSON, wrong shape). */
  | 'bad-answer';

/** A failed request to Consul's HTTP API, with enough context to log and to act on. */
export class ConsulRequestError extends Error {
  constructor(
    /** What we were doing, e.g. `register service`. */
    readonly operation: string,
    readonly kind: ConsulFailureKind,
    /** HTTP status when Consul answered. */
    readonly status: number | undefined,
    /** Consul's answer or the transport error, shortened. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`Consul ${operation} failed: ${status ? `HTTP ${status}: ` : ''}${detail}`, options);
    this.name = 'ConsulRequestError';
  }

  /** True when trying again later may succeed. */
  get retryable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'server-error' || this.kind === 'bad-answer';
  }
}

/** Classifies an HTTP status of a non-2xx Consul answer. */
export function kindOfStatus(status: number): ConsulFailureKind {
  if (status === 403 || status === 401) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 429 || status >= 500) return 'server-error';
  return 'rejected';
}

/** Shortens a response body or error text for messages and logs. */
export function shorten(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
