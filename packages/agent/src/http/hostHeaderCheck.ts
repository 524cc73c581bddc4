import type { IncomingMessage } from 'node:http';

/** Host name of a `Host` header value or an `Origin` URL, lower-cased; undefined when unparsable. */
function hostnameOf(value: string, isOrigin: boolean): string | undefined {
  try {
    return new URL(isOrigin ? value : `http://${value}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * DNS-rebinding protection: a web page on evil.example whose name resolves to this agent still sends its
 * own name in `Host` (and `Origin`), so only names the agent is known by are accepted. An empty allow-list
 * accepts any host. Returns the reason for a refusal, or undefined when the request may pass.
 */
export function hostHeaderProblem(req: IncomingMessage, allowed: ReadonlySet<string>): string | undefined {
  if (allowed.size === 0) return undefined;
  const host = req.headers.host;
  if (!host) return 'missing Host header';
  const name = hostnameOf(host, false);
  const bare = name?.replace(/^\[|\]$/g, '');
  if (!name || (!allowed.has(name) && !(bare && allowed.has(bare)))) return `Host "${host}" is not an allowed name of this agent`;
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return undefined;
  const originName = hostnameOf(origin, true);
  const originBare = originName?.replace(/^\[|\]$/g, '');
  if (!originName || (!allowed.has(originName) && !(originBare && allowed.has(originBare)))) return `Origin "${origin}" is not allowed`;
  return undefined;
}
