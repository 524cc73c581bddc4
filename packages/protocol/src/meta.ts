/**
 * Keys Flotilla puts in MCP `params._meta`. W3C trace context travels as `traceparent`/`tracestate`
 * (the convention MCP tooling uses); Flotilla's own keys carry the `flotilla/` prefix as MCP reserves
 * unprefixed names.
 */
export const META_TRACEPARENT = 'traceparent';
export const META_TRACESTATE = 'tracestate';
/**
 * Router-assigned id of a call. The router sets it on `tools/call` (and other forwarded requests); the
 * agent uses it in progress reports, and sets it on every server-to-client request or notification that
 * belongs to that call (sampling, elicitation, logging), so a router that pools upstream sessions can
 * route those to the client that made the call.
 */
export const META_CALL_ID = 'flotilla/callId';
/** Absolute deadline (epoch ms) of the client's call, so the node can stop work nobody waits for. */
export const META_DEADLINE = 'flotilla/deadline';
