import type { Logger } from '@flotilla/telemetry';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedRemoteSpec } from '../MountSpecs.js';
import type { PipeEnd } from '../pipe/PipeBridge.js';

/**
 * One session with a remote MCP server, through the MCP SDK's client transport for its kind
 * (`StreamableHTTPClientTransport` or the legacy `SSEClientTransport`), sending the spec's headers (the
 * bearer token among them) with every request. The SDK transport does not fail a request whose response
 * stream breaks (it only reports an error), so any error of the transport ends the session: its calls in
 * flight then fail at once instead of waiting for a timeout.
 */
export class RemoteEnd implements PipeEnd {
  readonly ended: Promise<string>;
  private readonly transport: StreamableHTTPClientTransport | SSEClientTransport;
  private handler: ((message: JSONRPCMessage) => void) | undefined;
  private resolveEnded!: (why: string) => void;
  private done = false;

  constructor(private readonly spec: ResolvedRemoteSpec, private readonly logger: Logger) {
    const url = new URL(spec.url);
    const requestInit: RequestInit = { headers: spec.headers };
    this.transport =
      spec.transport === 'sse'
        ? new SSEClientTransport(url, { requestInit })
        : new StreamableHTTPClientTransport(url, { requestInit, reconnectionOptions: { initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1, maxRetries: 0 } });
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.transport.onmessage = (m) => this.handler?.(m);
    this.transport.onclose = () => this.finish('the remote session closed');
    this.transport.onerror = (err) => this.finish(`remote transport error: ${describe(err)}`);
  }

  /** Opens the transport (the SSE transport connects here; Streamable HTTP on the first POST). */
  async start(): Promise<void> {
    await this.transport.start();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.done) return Promise.reject(new Error('the remote session has ended'));
    return this.transport.send(message).catch((err: unknown) => {
      throw new Error(describe(err), { cause: err });
    });
  }

  onMessage(handler: (message: JSONRPCMessage) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    const wasOpen = !this.done;
    this.finish('the session ended');
    if (wasOpen && this.transport instanceof StreamableHTTPClientTransport) await this.transport.terminateSession().catch(() => {});
    await this.transport.close().catch(() => {});
  }

  private finish(why: string): void {
    if (this.done) return;
    this.done = true;
    this.logger.debug({ reason: why }, 'remote session ended');
    this.resolveEnded(why);
  }
}

/** An error of the SDK transport as one line, without headers or bodies that could hold a secret. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const status = typeof code === 'number' && code > 0 ? `HTTP ${code}` : undefined;
  const cause = (err as { cause?: { code?: unknown } }).cause?.code;
  if (status === 'HTTP 401' || status === 'HTTP 403') return `${status}: the remote server refused the credentials (check headers and the environment variables they use)`;
  return [status, typeof cause === 'string' ? cause : undefined, err.message.slice(0, 300)].filter(Boolean).join(': ');
}
