// Preloaded into the conformance suite's Node process (NODE_OPTIONS=--import) when the router runs with
// auth on. The suite has no option for credentials, so its client sends the API key in
// FLOTILLA_CONFORMANCE_BEARER as `Authorization: Bearer` to the origin in FLOTILLA_CONFORMANCE_ORIGIN (and
// to no other), as an MCP client with a key would: through `fetch` (the SDK client), and through undici's
// `request` (the scenarios that set Host and Origin headers themselves), by way of a module hook that
// hands the suite a copy of undici whose `request` adds the header.
import { register } from 'node:module';

const token = process.env.FLOTILLA_CONFORMANCE_BEARER;
const origin = process.env.FLOTILLA_CONFORMANCE_ORIGIN;
if (token && origin) {
  const original = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? String(input) : input.url);
    if (url.origin !== origin) return original(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    return original(input, { ...init, headers });
  };
  register(new URL('./bearerHooks.mjs', import.meta.url));
}
