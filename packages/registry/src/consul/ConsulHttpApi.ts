import Consul from 'consul';
import { Agent, request, type Dispatcher } from 'undici';
import { ConsulHealthServiceAnswerSchema } from './consulSchemas.js';
import { formatConsulDuration } from './consulDuration.js';
import type { ConsulServiceDefinition } from './consulServiceDefinition.js';
import { ConsulRequestError, kindOfStatus, shorten } from './ConsulRequestError.js';
import type { ConsulSettings } from './ConsulSettings.js';

/** Result of a (possibly blocking) `GET /v1/health/service/:service`. */
export interface HealthServiceAnswer {
  /** Raw entries; the caller validates each one. */
  entries: unknown[];
  /** `X-Consul-Index`, when Consul sent a usable one. */
  index: bigint | undefined;
  /** `X-Consul-Results-Filtered-By-ACLs: true`: the token could not see some instances. */
  filteredByAcls: boolean;
}

/** Options of {@link ConsulHttpApi}. */
export interface ConsulHttpApiOptions {
  /** Timeout of every non-blocking request, ms. */
  requestTimeoutMs: number;
}

/** The shape of errors thrown by the `consul` client (papi): HTTP errors carry the response. */
interface ConsulClientError {
  message: string;
  code?: string;
  isPapi?: boolean;
  isResponse?: boolean;
  isCodec?: boolean;
  isTimeout?: boolean;
  statusCode?: number;
  response?: { statusCode?: number; body?: unknown };
}

function asClientError(err: unknown): ConsulClientError {
  return typeof err === 'object' && err !== null ? (err as ConsulClientError) : { message: String(err) };
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return JSON.stringify(body);
}

/**
 * The Consul HTTP API calls the registry makes, with every failure turned into a
 * {@link ConsulRequestError}. The `consul` npm client serves the calls it covers (deregister, health
 * listing); undici serves what it lacks: `replace-existing-checks` on register, `PUT
 * /v1/agent/check/update/:id` with Status and Output, and blocking queries with access to `X-Consul-Index`.
 */
export class ConsulHttpApi {
  private readonly client: Consul;
  private readonly dispatcher: Agent;
  private readonly headers: Record<string, string>;

  constructor(private readonly settings: ConsulSettings, private readonly options: ConsulHttpApiOptions) {
    const url = new URL(settings.baseUrl);
    const secure = url.protocol === 'https:';
    // The client honours `timeout` (ms) in its defaults (lib/constants.js DEFAULT_OPTIONS) although its typings omit it.
    const defaults: { timeout: number; token?: string } = { timeout: options.requestTimeoutMs, ...(settings.token ? { token: settings.token } : {}) };
    this.client = new Consul({
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : secure ? 443 : 80,
      secure,
      defaults,
    });
    this.dispatcher = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: options.requestTimeoutMs } });
    this.headers = settings.token ? { 'x-consul-token': settings.token } : {};
  }

  /** Base URL requests go to, for messages. */
  get baseUrl(): string {
    return this.settings.baseUrl;
  }

  /**
   * `PUT /v1/agent/service/register?replace-existing-checks=true`: registers or replaces a service on the
   * local agent; checks missing from the definition are removed (e.g. a previous process's checks).
   */
  async registerService(definition: ConsulServiceDefinition): Promise<void> {
    await this.send('register service', 'PUT', '/v1/agent/service/register?replace-existing-checks=true', definition);
  }

  /** `PUT /v1/agent/service/deregister/:id`; a service the agent does not know counts as deregistered. */
  async deregisterService(serviceId: string): Promise<void> {
    try {
      await this.client.agent.service.deregister({ id: serviceId });
    } catch (err) {
      const error = this.fromClientError('deregister service', err);
      if (error.kind !== 'not-found') throw error;
    }
  }

  /** `PUT /v1/agent/check/update/:id` with `{ Status, Output }`: resets the TTL of a TTL check. */
  async updateTtlCheck(checkId: string, status: 'passing' | 'warning' | 'critical', output: string): Promise<void> {
    await this.send('update TTL check', 'PUT', `/v1/agent/check/update/${encodeURIComponent(checkId)}`, { Status: status, Output: output });
  }

  /** `GET /v1/health/service/:service` (all instances, any health) through the `consul` client. */
  async listHealthEntries(serviceName: string): Promise<unknown[]> {
    let body: unknown;
    try {
      body = await this.client.health.service({ service: serviceName });
    } catch (err) {
      throw this.fromClientError('list service health', err);
    }
    const parsed = ConsulHealthServiceAnswerSchema.safeParse(body);
    if (!parsed.success) throw new ConsulRequestError('list service health', 'bad-answer', undefined, `expected a JSON array, got ${shorten(bodyText(body), 120)}`);
    return parsed.data;
  }

  /**
   * Blocking `GET /v1/health/service/:service?index=&wait=`: returns when the result changes after `index`
   * or `waitMs` passes. Without `index` it answers at once. Not filtered by `passing`: the caller wants
   * warning instances too.
   */
  async blockingHealthEntries(
    serviceName: string,
    query: { index?: bigint; waitMs: number; signal?: AbortSignal },
  ): Promise<HealthServiceAnswer> {
    const params = new URLSearchParams();
    if (query.index !== undefined && query.index > 0n) {
      params.set('index', query.index.toString());
      params.set('wait', formatConsulDuration(query.waitMs));
    }
    const qs = params.size > 0 ? `?${params.toString()}` : '';
    // Consul may hold the request up to wait + wait/16; leave room for that and for a slow answer.
    const timeoutMs = query.index ? query.waitMs + Math.ceil(query.waitMs / 16) + this.options.requestTimeoutMs : this.options.requestTimeoutMs;
    const answer = await this.exchange('watch service health', 'GET', `/v1/health/service/${encodeURIComponent(serviceName)}${qs}`, undefined, timeoutMs, query.signal);
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      throw new ConsulRequestError('watch service health', 'bad-answer', answer.status, `answer is not JSON: ${shorten(answer.text, 120)}`);
    }
    const parsed = ConsulHealthServiceAnswerSchema.safeParse(body);
    if (!parsed.success) throw new ConsulRequestError('watch service health', 'bad-answer', answer.status, `expected a JSON array, got ${shorten(answer.text, 120)}`);
    const rawIndex = headerValue(answer.headers['x-consul-index']);
    let index: bigint | undefined;
    if (rawIndex !== undefined && /^\d+$/.test(rawIndex)) index = BigInt(rawIndex);
    return { entries: parsed.data, index, filteredByAcls: headerValue(answer.headers['x-consul-results-filtered-by-acls']) === 'true' };
  }

  /** Releases connections. */
  async close(): Promise<void> {
    this.client.destroy();
    await this.dispatcher.close().catch(() => {});
  }

  private async send(operation: string, method: Dispatcher.HttpMethod, path: string, body: unknown): Promise<void> {
    await this.exchange(operation, method, path, body, this.options.requestTimeoutMs);
  }

  private async exchange(
    operation: string,
    method: Dispatcher.HttpMethod,
    path: string,
    body: unknown,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(`${this.settings.baseUrl}${path}`, {
        method,
        dispatcher: this.dispatcher,
        headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new ConsulRequestError(operation, 'unreachable', undefined, `${this.settings.baseUrl}: ${describeTransportError(err)}`, { cause: err });
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (err) {
      throw new ConsulRequestError(operation, 'unreachable', response.statusCode, `answer cut off: ${describeTransportError(err)}`, { cause: err });
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw new ConsulRequestError(operation, kindOfStatus(response.statusCode), response.statusCode, shorten(text) || 'empty answer');
    }
    return { status: response.statusCode, text, headers: response.headers };
  }

  private fromClientError(operation: string, err: unknown): ConsulRequestError {
    const e = asClientError(err);
    const status = e.statusCode ?? e.response?.statusCode;
    if (e.isResponse && status !== undefined) {
      return new ConsulRequestError(operation, kindOfStatus(status), status, shorten(bodyText(e.response?.body)) || e.message, { cause: err });
    }
    if (e.isCodec) return new ConsulRequestError(operation, 'bad-answer', status, `answer is not valid JSON (${e.message})`, { cause: err });
    return new ConsulRequestError(operation, 'unreachable', undefined, `${this.settings.baseUrl}: ${e.code ? `${e.code} ` : ''}${e.message}`, { cause: err });
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describeTransportError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}
