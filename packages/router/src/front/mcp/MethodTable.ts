import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { JsonRpcError } from '../../errors/JsonRpcError.js';
import type { InboundRequest } from './InboundRequest.js';

/** Handles one method's requests: `params` checked against its schema; resolves with the result. */
export type RequestHandler<P> = (params: P, request: InboundRequest) => Promise<Record<string, unknown>> | Record<string, unknown>;

/** Handles one method's notifications. */
export type NotificationHandler = (params: Record<string, unknown> | undefined) => void | Promise<void>;

interface Entry {
  readonly params: z.ZodType;
  readonly handler: RequestHandler<never>;
}

/**
 * The methods a client session answers, each with the schema its params are checked against (built once,
 * at registration). An unknown method is "method not found"; params that do not fit are "invalid params"
 * naming what is wrong.
 */
export class MethodTable {
  private readonly requests = new Map<string, Entry>();
  private readonly notifications = new Map<string, NotificationHandler>();

  /** Answers `method` with `handler`, its params checked against `params` first. */
  on<S extends z.ZodType>(method: string, params: S, handler: RequestHandler<z.output<S>>): this {
    this.requests.set(method, { params, handler: handler as RequestHandler<never> });
    return this;
  }

  /** Hears notification `method`. */
  onNotification(method: string, handler: NotificationHandler): this {
    this.notifications.set(method, handler);
    return this;
  }

  /** Runs the handler of a request; rejects with the JSON-RPC error to answer. */
  async dispatch(method: string, params: unknown, request: InboundRequest): Promise<Record<string, unknown>> {
    const entry = this.requests.get(method);
    if (!entry) throw new JsonRpcError(ErrorCode.MethodNotFound, `Method not found: ${method}`);
    const parsed = entry.params.safeParse(params ?? {});
    if (!parsed.success) {
      const detail = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ');
      throw new JsonRpcError(ErrorCode.InvalidParams, `Invalid params for ${method}: ${detail}`);
    }
    return entry.handler(parsed.data as never, request);
  }

  /** Runs the handler of a notification, if any; errors are the caller's to log. */
  async notify(method: string, params: Record<string, unknown> | undefined): Promise<void> {
    await this.notifications.get(method)?.(params);
  }
}
