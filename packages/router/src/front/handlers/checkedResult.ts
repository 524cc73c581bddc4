import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { JsonRpcError } from '../../errors/JsonRpcError.js';

/** A server's result checked against the SDK's schema for it: what servers send is external input. */
export function checkedResult<S extends z.ZodType>(schema: S, result: unknown, server: string): z.output<S> {
  const parsed = schema.safeParse(result);
  if (!parsed.success) throw new JsonRpcError(ErrorCode.InternalError, `server ${server} sent an invalid result`);
  return parsed.data;
}
