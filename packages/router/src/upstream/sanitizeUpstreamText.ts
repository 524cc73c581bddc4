/** Longest upstream text passed on, characters. */
const MAX_LENGTH = 200;
/** Longest input looked at (the rest is cut first, so every pattern below runs on a bounded string). */
const MAX_INPUT = 2000;

/** Markup: an HTML or XML tag, comment or doctype. A body with markup is dropped whole. */
const MARKUP = /<\s*[/!?a-z]/i;
// Control characters, including newlines and DEL.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g;
const URL_LIKE = /\b[a-z][a-z0-9+.-]{0,15}:\/\/[^\s'"<>]*/gi;
const BRACKETED_IPV6 = /\[[0-9a-f:.%]{2,64}\](?::\d{1,5})?/gi;
/** Hex groups and colons; an IPv6 address when it has `::` or three colons or more (`12:30:45` stays). */
const IPV6_LIKE = /[0-9a-f]*(?::[0-9a-f]*){2,}/gi;
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g;
/** A dotted host name (its last label starts with a letter), with an optional port. */
const HOST_NAME = /\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,10}[a-z][a-z0-9-]{0,62}(?::\d{1,5})?\b/gi;
/** A bare name with a port: `db-7:5432`. */
const HOST_PORT = /\b[a-z][a-z0-9-]{0,62}:\d{2,5}\b/gi;

/**
 * Makes text that came from upstream (an error body a node, or a proxy in front of it, sent; a parser's
 * message quoting what it could not parse) fit to show a client or the dashboard: one short line with
 * no markup, no URLs, no IP addresses and no host names. Returns undefined when nothing is left worth
 * showing (e.g. an HTML page): then say only the status.
 */
export function sanitizeUpstreamText(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const bounded = text.slice(0, MAX_INPUT);
  if (MARKUP.test(bounded)) return undefined;
  const line = bounded
    .replace(CONTROL, ' ')
    .replace(URL_LIKE, '<url>')
    .replace(BRACKETED_IPV6, '<address>')
    .replace(IPV6_LIKE, (m) => (m.includes('::') || m.split(':').length > 3 ? '<address>' : m))
    .replace(IPV4, '<address>')
    .replace(HOST_NAME, '<host>')
    .replace(HOST_PORT, '<host>')
    .replace(/\s+/g, ' ')
    .trim();
  if (!line) return undefined;
  return line.length > MAX_LENGTH ? `${line.slice(0, MAX_LENGTH - 1)}…` : line;
}
