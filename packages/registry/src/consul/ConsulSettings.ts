import { readFileSync } from 'node:fs';

/** Default Consul service name under which agents announce themselves. */
export const DEFAULT_CONSUL_SERVICE_NAME = 'flotilla-agent';

/** Where and how to reach Consul's HTTP API, as read from the standard `CONSUL_HTTP_*` variables. */
export interface ConsulSettings {
  /** Base URL of the HTTP API without `/v1`, e.g. `http://127.0.0.1:8500`. */
  baseUrl: string;
  /** ACL token sent as `X-Consul-Token`; absent when none is configured. */
  token?: string;
  /** Consul service name agents register under. */
  serviceName: string;
}

/**
 * Turns a `CONSUL_HTTP_ADDR` value into a base URL. Accepts what the Consul CLI accepts for TCP:
 * `host:port`, `host` (port 8500), or an `http://` / `https://` URL. `useTls` (from `CONSUL_HTTP_SSL`)
 * picks https for values without a scheme. Unix sockets are not supported.
 */
export function parseConsulAddress(value: string, useTls = false): string {
  const raw = value.trim();
  if (raw === '') throw new Error('CONSUL_HTTP_ADDR is empty');
  if (raw.startsWith('unix://')) {
    throw new Error(`CONSUL_HTTP_ADDR=${raw}: unix sockets are not supported by the Flotilla Consul registry; use host:port or an http(s) URL`);
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${useTls ? 'https' : 'http'}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`CONSUL_HTTP_ADDR=${raw} is neither host:port nor an http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`CONSUL_HTTP_ADDR=${raw}: scheme ${url.protocol} is not supported; use http or https`);
  }
  if (!url.port && !/^[a-z]+:\/\//i.test(raw)) url.port = '8500';
  // The API paths are absolute (/v1/...): a path in the address would be dropped silently, so refuse it.
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new Error(`CONSUL_HTTP_ADDR=${raw}: a path is not supported; give the agent's host and port`);
  }
  return `${url.protocol}//${url.host}`;
}

/**
 * Reads Consul settings from the environment: `CONSUL_HTTP_ADDR` (default `127.0.0.1:8500`),
 * `CONSUL_HTTP_SSL`, `CONSUL_HTTP_TOKEN` or `CONSUL_HTTP_TOKEN_FILE`, and `FLOTILLA_CONSUL_SERVICE`
 * for the service name (default `flotilla-agent`).
 */
export function consulSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ConsulSettings {
  const useTls = /^(1|true|yes)$/i.test(env.CONSUL_HTTP_SSL ?? '');
  const baseUrl = parseConsulAddress(env.CONSUL_HTTP_ADDR || '127.0.0.1:8500', useTls);
  let token = env.CONSUL_HTTP_TOKEN?.trim() || undefined;
  if (!token && env.CONSUL_HTTP_TOKEN_FILE) {
    try {
      token = readFileSync(env.CONSUL_HTTP_TOKEN_FILE, 'utf8').trim() || undefined;
    } catch (err) {
      throw new Error(`CONSUL_HTTP_TOKEN_FILE=${env.CONSUL_HTTP_TOKEN_FILE} cannot be read: ${(err as Error).message}`);
    }
  }
  const serviceName = env.FLOTILLA_CONSUL_SERVICE?.trim() || DEFAULT_CONSUL_SERVICE_NAME;
  return { baseUrl, serviceName, ...(token ? { token } : {}) };
}
