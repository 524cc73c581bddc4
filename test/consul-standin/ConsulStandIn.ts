import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../../packages/registry/test/support/testDeps.js';
import { parseGoDuration } from './goDuration.js';
import { mayRead, mayWrite, resolveToken, type ResolvedToken, type StandInAclConfig } from './standInAcl.js';
import { StandInCatalog, StandInHttpError, type StandInCatalogOptions } from './StandInCatalog.js';
import { CheckUpdateSchema, ServiceRegistrationSchema } from './standInRequests.js';

/** A canned answer the stand-in gives instead of serving matching requests (5xx, garbage...). */
export interface StandInFault {
  /** HTTP method to match; any when absent. */
  method?: string;
  /** Path (without query) to match; any when absent. */
  path?: RegExp;
  /** Whole request target (path and query) to match, e.g. `/index=/` for blocking queries only. */
  target?: RegExp;
  status: number;
  body: string;
  contentType?: string;
  /** How many requests to answer this way; unlimited when absent. */
  times?: number;
}

/** Options of {@link ConsulStandIn}. */
export interface ConsulStandInOptions extends Partial<Omit<StandInCatalogOptions, 'logger' | 'startIndex'>> {
  /** Port to listen on; 0 (default) picks a free one, kept across restarts. */
  port?: number;
  host?: string;
  /** ACLs (default-deny with these tokens); disabled when absent, like a Consul without ACLs. */
  acl?: StandInAclConfig;
  logger?: Logger;
}

const MAX_WAIT_MS = 10 * 60_000;
const DEFAULT_WAIT_MS = 5 * 60_000;

/**
 * A stateful stand-in for the parts of Consul's HTTP API (agent + catalog of one node) that Flotilla's
 * Consul registry uses, following Consul's documented request and response shapes so the same client
 * works against a real Consul. It is NOT Consul: no raft, no gossip, one node, TTL and gRPC checks only.
 *
 * Endpoints: `PUT /v1/agent/service/register` (with `replace-existing-checks`), `PUT
 * /v1/agent/service/deregister/:id`, `PUT /v1/agent/check/{pass,warn,fail}/:id?note=`, `PUT
 * /v1/agent/check/update/:id`, `GET /v1/health/service/:service` (`passing`, `tag`, blocking `index` and
 * `wait`, `X-Consul-Index`), `GET /v1/agent/checks`, `GET /v1/agent/services`, `GET /v1/status/leader`.
 * Tokens come from `X-Consul-Token` or `Authorization: Bearer`. Faults can be injected for tests.
 */
export class ConsulStandIn {
  private server: Server | undefined;
  private catalog: StandInCatalog;
  private faults: StandInFault[] = [];
  private port: number;
  private readonly logger: Logger;
  private generation = 0;
  /** Requests served, by `METHOD path` (without query), for tests that count calls. */
  readonly requests = new Map<string, number>();

  constructor(private readonly options: ConsulStandInOptions = {}) {
    this.port = options.port ?? 0;
    this.logger = options.logger ?? createLogger({ name: 'consul-standin', level: process.env.LOG_LEVEL ?? 'warn' });
    this.catalog = this.newCatalog();
  }

  /** Starts a stand-in and waits until it listens. */
  static async start(options: ConsulStandInOptions = {}): Promise<ConsulStandIn> {
    const standIn = new ConsulStandIn(options);
    await standIn.start();
    return standIn;
  }

  /** `http://127.0.0.1:<port>`, what CONSUL_HTTP_ADDR should hold. */
  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** `host:port`, the other CONSUL_HTTP_ADDR form. */
  get address(): string {
    return `${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** Listens (again, on the same port after a stop) and resumes checks. */
  async start(): Promise<void> {
    if (this.server?.listening) return;
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.catalog.resume();
    this.logger.info({ url: this.url }, 'consul stand-in listening');
  }

  /** Stops listening and drops every open connection (blocking queries included); state is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.catalog.pause();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    this.logger.info({ url: this.url }, 'consul stand-in stopped');
  }

  /** Stops and starts again; with `loseState` the catalog comes back empty with a lower index (like a dev-mode Consul restart). */
  async restart(options: { loseState?: boolean } = {}): Promise<void> {
    await this.stop();
    if (options.loseState) this.loseState();
    await this.start();
  }

  /** Forgets every service and check and restarts the index low, as a Consul agent without persisted state would. */
  loseState(): void {
    this.catalog.dispose();
    this.catalog = this.newCatalog();
    if (this.server?.listening) this.catalog.resume();
  }

  /** Stops and releases everything. */
  async dispose(): Promise<void> {
    await this.stop();
    this.catalog.dispose();
  }

  /** Answers matching requests with a canned response until cleared or used up. */
  injectFault(fault: StandInFault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  private newCatalog(): StandInCatalog {
    this.generation += 1;
    return new StandInCatalog({
      logger: this.logger,
      nodeName: this.options.nodeName ?? 'consul-standin',
      checkUpdateIntervalMs: this.options.checkUpdateIntervalMs ?? 5 * 60_000,
      deregisterCriticalMinimumMs: this.options.deregisterCriticalMinimumMs ?? 60_000,
      reapIntervalMs: this.options.reapIntervalMs ?? 30_000,
      // A fresh catalog starts low, so a client that saw a previous incarnation sees the index go backwards.
      startIndex: 10,
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = req.method ?? 'GET';
    const key = `${method} ${url.pathname}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    try {
      const fault = this.takeFault(method, url.pathname, req.url ?? '/');
      if (fault) {
        await drain(req);
        return send(res, fault.status, fault.body, fault.contentType ?? 'text/plain; charset=utf-8');
      }
      const token = resolveToken(this.options.acl, tokenOf(req, url));
      if (token.kind === 'unknown') {
        await drain(req);
        return send(res, 403, 'ACL not found');
      }
      await this.route(method, url, req, res, token);
    } catch (err) {
      if (err instanceof StandInHttpError) return send(res, err.status, err.message);
      this.logger.error({ err, path: url.pathname }, 'consul stand-in request failed');
      send(res, 500, (err as Error).message);
    }
  }

  private async route(method: string, url: URL, req: IncomingMessage, res: ServerResponse, token: ResolvedToken): Promise<void> {
    const path = url.pathname;
    let m: RegExpMatchArray | null;
    if (path === '/v1/agent/service/register') {
      requireMethod(method, 'PUT');
      const body = ServiceRegistrationSchema.safeParse(await readJson(req));
      if (!body.success) throw new StandInHttpError(400, `Request decode failed: ${body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const name = body.data.Name ?? '';
      this.requireWrite(token, name);
      const existing = this.catalog.serviceNameOf(body.data.ID || name);
      if (existing && existing !== name) this.requireWrite(token, existing);
      const replace = url.searchParams.has('replace-existing-checks') && url.searchParams.get('replace-existing-checks') !== 'false';
      this.catalog.registerService(body.data, replace);
      return send(res, 200, '');
    }
    if ((m = path.match(/^\/v1\/agent\/service\/deregister\/(.+)$/))) {
      requireMethod(method, 'PUT');
      await drain(req);
      const id = decodeURIComponent(m[1] as string);
      const name = this.catalog.serviceNameOf(id);
      if (name) this.requireWrite(token, name);
      this.catalog.deregisterService(id);
      return send(res, 200, '');
    }
    if ((m = path.match(/^\/v1\/agent\/check\/(pass|warn|fail|update)\/(.+)$/))) {
      requireMethod(method, 'PUT');
      const id = decodeURIComponent(m[2] as string);
      let status: string;
      let output: string;
      if (m[1] === 'update') {
        const body = CheckUpdateSchema.safeParse(await readJson(req));
        if (!body.success) throw new StandInHttpError(400, `Request decode failed: ${body.error.issues.map((i) => i.message).join('; ')}`);
        status = body.data.Status ?? '';
        output = body.data.Output ?? '';
      } else {
        await drain(req);
        status = m[1] === 'pass' ? 'passing' : m[1] === 'warn' ? 'warning' : 'critical';
        output = url.searchParams.get('note') ?? '';
      }
      const check = this.catalog.checkById(id);
      if (check) this.requireWrite(token, check.ServiceName);
      this.catalog.updateTtlCheck(id, status, output);
      return send(res, 200, '');
    }
    if ((m = path.match(/^\/v1\/health\/service\/(.+)$/))) {
      requireMethod(method, 'GET');
      return this.healthService(decodeURIComponent(m[1] as string), url, res, token);
    }
    if (path === '/v1/agent/checks') {
      requireMethod(method, 'GET');
      return sendJson(res, mayRead(token) ? this.catalog.agentChecks() : {});
    }
    if (path === '/v1/agent/services') {
      requireMethod(method, 'GET');
      return sendJson(res, mayRead(token) ? this.catalog.agentServices() : {});
    }
    if (path === '/v1/status/leader') return sendJson(res, `127.0.0.1:8300`);
    send(res, 404, '');
  }

  private async healthService(name: string, url: URL, res: ServerResponse, token: ResolvedToken): Promise<void> {
    const q = url.searchParams;
    if (q.has('filter')) throw new StandInHttpError(400, 'the Consul stand-in does not implement ?filter');
    const dc = q.get('dc');
    if (dc && dc !== 'dc1') throw new StandInHttpError(500, `No path to datacenter`);
    let passing = false;
    if (q.has('passing')) {
      const v = q.get('passing') ?? '';
      if (v === '' || /^(1|t|true)$/i.test(v)) passing = true;
      else if (/^(0|f|false)$/i.test(v)) passing = false;
      else throw new StandInHttpError(400, 'Invalid value for ?passing');
    }
    const indexText = q.get('index');
    if (indexText !== null && indexText !== '') {
      if (!/^\d+$/.test(indexText)) throw new StandInHttpError(400, 'Invalid index');
      const waitText = q.get('wait');
      let waitMs = DEFAULT_WAIT_MS;
      if (waitText) {
        const parsed = parseGoDuration(waitText);
        if (parsed === undefined) throw new StandInHttpError(400, 'Invalid wait time');
        waitMs = Math.min(parsed, MAX_WAIT_MS);
      }
      const generation = this.generation;
      await this.catalog.waitForChange(name, Number(indexText), waitMs);
      // The stand-in stopped or lost its state while this query waited: the connection is gone anyway.
      if (generation !== this.generation || !this.server) return;
    }
    const tag = q.get('tag');
    let entries = this.catalog.healthEntries(name, { passing, ...(tag ? { tag } : {}) });
    const headers: Record<string, string> = {
      'X-Consul-Index': String(this.catalog.indexOf(name)),
      'X-Consul-KnownLeader': 'true',
      'X-Consul-LastContact': '0',
      'X-Consul-Effective-Consistency': 'leader',
    };
    if (!mayRead(token) && entries.length > 0) {
      // Consul filters what a token may not read instead of refusing the request.
      entries = [];
      headers['X-Consul-Results-Filtered-By-ACLs'] = 'true';
    }
    sendJson(res, entries, headers);
  }

  private requireWrite(token: ResolvedToken, serviceName: string): void {
    if (mayWrite(token)) return;
    const accessor = token.kind === 'known' ? token.accessorId : 'unknown';
    throw new StandInHttpError(403, `Permission denied: token with AccessorID '${accessor}' lacks permission 'service:write' on "${serviceName}"`);
  }

  private takeFault(method: string, path: string, target: string): StandInFault | undefined {
    const fault = this.faults.find((f) => (!f.method || f.method === method) && (!f.path || f.path.test(path)) && (!f.target || f.target.test(target)));
    if (!fault) return undefined;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) this.faults = this.faults.filter((f) => f !== fault);
    }
    return fault;
  }
}

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  return url.searchParams.get('token') ?? undefined;
}

function requireMethod(actual: string, expected: string): void {
  if (actual !== expected) throw new StandInHttpError(405, `method ${actual} not allowed`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function drain(req: IncomingMessage): Promise<void> {
  await readBody(req);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StandInHttpError(400, `Request decode failed: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8', headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, value: unknown, headers: Record<string, string> = {}): void {
  send(res, 200, JSON.stringify(value), 'application/json', headers);
}
