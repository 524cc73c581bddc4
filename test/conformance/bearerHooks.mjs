// Module hooks for bearerFetch.mjs: `import ... from "undici"` gets a module that re-exports undici with a
// `request` adding `Authorization: Bearer $FLOTILLA_CONFORMANCE_BEARER` to requests for
// $FLOTILLA_CONFORMANCE_ORIGIN.
const SHIM = 'flotilla-bearer-undici:';

export async function resolve(specifier, context, next) {
  if (specifier === 'undici' && !context.parentURL?.startsWith(SHIM)) {
    const real = await next(specifier, context);
    return { url: `${SHIM}${encodeURIComponent(real.url)}`, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith(SHIM)) return next(url, context);
  const real = JSON.stringify(decodeURIComponent(url.slice(SHIM.length)));
  const source = `
import * as undici from ${real};
export * from ${real};
export default undici.default;
export function request(target, options = {}) {
  const token = process.env.FLOTILLA_CONFORMANCE_BEARER;
  const origin = process.env.FLOTILLA_CONFORMANCE_ORIGIN;
  if (token && new URL(String(target)).origin === origin && !Array.isArray(options.headers)) {
    const headers = { ...(options.headers ?? {}) };
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) headers.authorization = 'Bearer ' + token;
    options = { ...options, headers };
  }
  return undici.request(target, options);
}
`;
  return { format: 'module', source, shortCircuit: true };
}
