/**
 * The server's own JSON text of a result, kept beside the parsed result (by identity, so a copy or a
 * checked re-parse of it never matches), so the answer to the client is the server's text with only the
 * id changed: a result that may be megabytes is not encoded a second time, and it reaches the client
 * exactly as the server wrote it (numbers beyond double precision included).
 *
 * The text is kept only when splicing the id is certain to give the message the router parsed: the text
 * is one line (it goes into one SSE `data:` field), its only members are `jsonrpc`, `result` and `id`, and
 * it ends with `,"id":<the request's id>}`. As the text is valid JSON, that tail can only be the top-level
 * object's last member (a quote before `id` or before the id's value that closed an earlier string would
 * leave a bare word, and the final `}` closes the outermost object), so replacing it replaces the id and
 * nothing else. The ids the router sends are plain (no escapes), which keeps that argument simple.
 * A server that repeats a member is read as `JSON.parse` reads it (the last one counts) and its client
 * gets the text as sent: a client whose parser takes the first `id` would see the router's request id to
 * that server, never another client's (servers see none of the clients' ids), so a hostile server can at
 * most confuse its own answers, as it could by answering wrongly.
 */
const bodies = new WeakMap<object, string>();

/** The end of a server's answer whose last member is `id`: `,"id":<id>}`; undefined for an id that needs escapes. */
function idTail(id: string | number): string | undefined {
  const json = JSON.stringify(id);
  return json.includes('\\') ? undefined : `,"id":${json}}`;
}

/**
 * Notes `text`, the wire form of `message` (a plain result answer to request `id`, already checked), as
 * the text of `result` when the id can be spliced; otherwise notes nothing and the answer is encoded anew.
 */
export function keepResultText(text: string, message: Record<string, unknown>, result: object, id: string | number): void {
  const tail = idTail(id);
  if (tail === undefined || !text.endsWith(tail)) return;
  let members = 0;
  for (const key in message) if (Object.hasOwn(message, key)) members++;
  if (members !== 3 || text.includes('\n') || text.includes('\r')) return;
  bodies.set(result, text.slice(0, text.length - tail.length));
}

/** The JSON text of the answer to the client's request `id` with `result`: the server's own text when it was kept. */
export function answerText(id: string | number, result: Record<string, unknown>): string {
  const body = bodies.get(result);
  return body === undefined ? JSON.stringify({ jsonrpc: '2.0', id, result }) : `${body},"id":${JSON.stringify(id)}}`;
}
