import type { IncomingMessage } from 'node:http';

/** Why a request was refused by {@link HostOriginPolicy}. */
export type HostOriginVerdict = { ok: true } | { ok: false; reason: string };

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * DNS-rebinding protection: a browser tricked into sending requests to the router under another name
 * carries that name in `Host` (and its page's `Origin`). Requests must name an allowed host; an `Origin`,
 * when present (browsers), must be allowed too. Non-browser clients send no Origin.
 */
export class HostOriginPolicy {
  readonly allowedHosts: ReadonlySet<string>;
  readonly allowedOrigins: ReadonlySet<string>;

  constructor(options: { host: string; port: number; allowedHosts?: string[]; allowedOrigins?: string[] }) {
    const names = new Set(LOOPBACK_NAMES);
    // Listening on a specific non-wildcard address makes that address a name clients legitimately use.
    if (!['0.0.0.0', '::', '', 'localhost', '127.0.0.1', '::1'].includes(options.host)) {
      names.add(options.host.includes(':') ? `[${options.host}]` : options.host);
    }
    this.allowedHosts = new Set((options.allowedHosts ?? [...names].map((n) => `${n}:${options.port}`)).map((h) => h.toLowerCase()));
    // Pages served under an allowed host name (e.g. a load balancer's) are the origins allowed by default.
    this.allowedOrigins = new Set(
      (options.allowedOrigins ?? [...this.allowedHosts].flatMap((h) => [`http://${h}`, `https://${h}`])).map((o) => o.toLowerCase()),
    );
  }

  check(req: IncomingMessage): HostOriginVerdict {
    const host = req.headers.host?.toLowerCase();
    if (!host || !this.allowedHosts.has(host)) return { ok: false, reason: `Invalid Host header: ${req.headers.host ?? '(none)'}` };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigins.has(origin.toLowerCase())) return { ok: false, reason: `Invalid Origin header: ${origin}` };
    return { ok: true };
  }
}
