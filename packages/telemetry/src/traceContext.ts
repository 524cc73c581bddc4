import { context, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';

type Carrier = Record<string, unknown>;

const metaGetter: TextMapGetter<Carrier> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => (typeof c[k] === 'string' ? (c[k] as string) : undefined),
};
const metaSetter: TextMapSetter<Carrier> = { set: (c, k, v) => { c[k] = v; } };

/** Writes the active (or given) trace context into an MCP `params._meta` object as `traceparent`/`tracestate`. */
export function injectTraceMeta(meta: Carrier, ctx: Context = context.active()): Carrier {
  propagation.inject(ctx, meta, metaSetter);
  return meta;
}

/** Reads trace context from an MCP `params._meta` object; returns the active context when there is none. */
export function extractTraceMeta(meta: Carrier | undefined, base: Context = context.active()): Context {
  return meta ? propagation.extract(base, meta, metaGetter) : base;
}

/** Minimal view of NATS message headers (nats.js `MsgHdrs`), so this package need not depend on NATS. */
export interface HeaderCarrier {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
}

/** Writes the active trace context into NATS headers. */
export function injectTraceHeaders(headers: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, { set: (h, k, v) => h.set(k, v) });
}

/** Reads trace context from NATS headers. */
export function extractTraceHeaders(headers: HeaderCarrier | undefined, base: Context = context.active()): Context {
  if (!headers) return base;
  return propagation.extract(base, headers, { keys: (h) => h.keys(), get: (h, k) => h.get(k) || undefined });
}
