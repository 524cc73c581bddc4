import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ArgumentCheck } from '../ToolArgumentValidator.js';

/** To the validation worker: check `args` against the schema known as `key` (sent along the first time). */
export interface ArgumentCheckRequest {
  readonly id: number;
  readonly key: number;
  readonly tool?: Pick<Tool, 'name' | 'inputSchema'>;
  readonly args: Record<string, unknown> | undefined;
}

/** From the validation worker: the outcome, or that it no longer holds the schema (send it again). */
export type ArgumentCheckReply = { readonly id: number; readonly result: ArgumentCheck } | { readonly id: number; readonly missing: true } | { readonly ready: true };
