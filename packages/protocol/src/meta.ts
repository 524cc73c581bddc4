/**
 * Keys Flotilla puts in MCP `params._meta`. W3C trace context travels as `traceparent`/`tracestate`
 * (the convention MCP tooling uses); Flotilla's own keys carry the `flotilla/` prefix as MCP reserves
 * unprefixed names.
 */
export const META_TRACEPARENT = 'traceparent';
export const META_TRACESTATE = 'tracestate';
/** Router-assigned id of a call, so agents' progress reports can be matched to the router's calls. */
export const META_CALL_ID = 'flotilla/callId';
/** Absolute deadline (epoch ms) of the client's call, so the node can stop work nobody waits for. */
export const META_DEADLINE = 'flotilla/deadline';
/**
 * Set by the agent on server-to-client requests and notifications (sampling, elicitation, logging)
 * that belong to a call: the JSON-RPC id of that call on the agent's session, so a router that pools
 * upstream sessions can route them to the client that made the call.
 */
export const META_RELATED_REQUEST_ID = 'flotilla/relatedRequestId';
