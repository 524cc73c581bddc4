import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';

const REQUEST_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);
const RELATED_TASK_META_KEY = 'io.modelcontextprotocol/related-task';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON-RPC id or progress token the SDK's schemas accept without a doubt: a string or a safe integer. */
function isPlainId(value: unknown): boolean {
  return typeof value === 'string' || (typeof value === 'number' && Number.isSafeInteger(value));
}

/**
 * Whether `value` (parsed JSON) is a single JSON-RPC request the SDK's `JSONRPCRequestSchema` certainly
 * accepts, checked without zod: the common shape of every call (strict envelope, string method, params an
 * object whose `_meta`, if any, is an object with at most a string or integer progress token). False means
 * "not sure", never "invalid": the caller then checks with the schema, as for batches, notifications and
 * responses. Exactly what the schema would accept, so no input goes unchecked.
 */
export function isPlainRequest(value: unknown): value is JSONRPCRequest {
  if (!isPlainObject(value) || value['jsonrpc'] !== '2.0' || typeof value['method'] !== 'string' || !isPlainId(value['id'])) return false;
  for (const key in value) if (!REQUEST_KEYS.has(key)) return false;
  const params = value['params'];
  if (params === undefined) return !('params' in value);
  if (!isPlainObject(params)) return false;
  const meta = params['_meta'];
  if (meta === undefined) return !('_meta' in params);
  if (!isPlainObject(meta) || RELATED_TASK_META_KEY in meta) return false;
  const token = meta['progressToken'];
  return token === undefined ? !('progressToken' in meta) : isPlainId(token);
}
