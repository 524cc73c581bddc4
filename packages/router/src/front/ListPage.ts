import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcError } from '../errors/JsonRpcError.js';

/** Items per page of a merged list. */
export const LIST_PAGE_SIZE = 500;

/** One page of a list, as MCP list results carry it. */
export interface ListPage<T> {
  items: T[];
  nextCursor?: string;
}

/**
 * Cuts a merged list into pages. The cursor is an opaque offset; the list may change between pages (a
 * node joined), which clients learn through list_changed and answer by listing again.
 */
export function listPage<T>(items: readonly T[], cursor: string | undefined, pageSize = LIST_PAGE_SIZE): ListPage<T> {
  let offset = 0;
  if (cursor !== undefined) {
    const decoded = /^o([0-9]{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!decoded) throw new JsonRpcError(ErrorCode.InvalidParams, `Invalid cursor: ${cursor}`);
    offset = Number(decoded[1]);
  }
  const page = items.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  return next < items.length ? { items: page, nextCursor: Buffer.from(`o${next}`, 'utf8').toString('base64url') } : { items: page };
}
