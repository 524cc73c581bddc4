import { META_TRACEPARENT } from '@flotilla/protocol';
import { isSpanContextValid, trace } from '@opentelemetry/api';

/** Trace id of the span active now, when tracing is on and a valid span is active. */
export function activeTraceId(): string | undefined {
  const context = trace.getActiveSpan()?.spanContext();
  return context && isSpanContextValid(context) ? context.traceId : undefined;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Trace id of a client's `_meta.traceparent` (W3C), if it carries a valid one. The router's spans continue
 * the client's trace, so this is the call's trace id even when the router itself does not trace.
 */
export function traceIdOfMeta(meta: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const raw = meta?.[META_TRACEPARENT];
  if (typeof raw !== 'string') return undefined;
  const id = TRACEPARENT.exec(raw.trim().toLowerCase())?.[1];
  return id && id !== '0'.repeat(32) ? id : undefined;
}
