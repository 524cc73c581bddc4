import { createHash } from 'node:crypto';

/** Longest tool (and prompt) name the router exposes; many MCP clients reject longer ones. */
export const MAX_TOOL_NAME_LENGTH = 64;
/** Separator between server namespace and the server's own tool name. */
export const NAMESPACE_SEPARATOR = '_';

const VALID_TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** True when `name` follows the MCP tool-name rules (1..64 of letters, digits, `_`, `-`, `.`). */
export function isValidToolName(name: string): boolean {
  return VALID_TOOL_NAME.test(name);
}

/**
 * The router-facing name of `tool` on `server`: `<server>_<tool>`, with characters outside the MCP
 * tool-name alphabet replaced by `_`, and shortened deterministically (prefix + 8 hex of a SHA-256 of
 * the full name) when longer than 64 characters, so the same server gives the same name on every router.
 */
export function namespacedName(server: string, tool: string): string {
  const full = `${server}${NAMESPACE_SEPARATOR}${tool}`;
  const safe = full.replace(/[^A-Za-z0-9_.-]/g, '_');
  if (safe.length <= MAX_TOOL_NAME_LENGTH && safe === full) return safe;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  if (safe.length <= MAX_TOOL_NAME_LENGTH) {
    // Replaced characters could make two different names collide; the hash keeps them apart.
    return `${safe.slice(0, MAX_TOOL_NAME_LENGTH - 9)}_${hash}`.slice(0, MAX_TOOL_NAME_LENGTH);
  }
  return `${safe.slice(0, MAX_TOOL_NAME_LENGTH - 9)}_${hash}`;
}
