import type { Logger } from '@flotilla/telemetry';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ToolListChangedNotificationSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { HostedSession, ServerHost } from './ServerHost.js';
import { toolDigest } from './toolDigest.js';

/** What the probe knows about a server's tools. */
export interface ToolCatalog {
  tools: Tool[];
  digest: string;
}

/** Options of {@link ToolCatalogProbe}. */
export interface ToolCatalogProbeOptions {
  /** Longest the probe's `initialize` may take, ms (default: the SDK's 60 s). */
  connectTimeoutMs?: number;
}

const MAX_PAGES = 100;

/**
 * An in-process MCP client on its own server session (SDK in-memory transport): lists the server's tools
 * for the registry record's digest, follows `tools/list_changed`, and pings to tell whether the server
 * still answers. Its calls bypass the node's call tracking: they are the agent's, not the fleet's.
 *
 * A mounted server's session can end under the probe (its process exited, its remote endpoint went
 * away): the probe then opens a new one on its next {@link ping}, and reports a changed tool list.
 */
export class ToolCatalogProbe {
  private client: Client | undefined;
  private session: HostedSession | undefined;
  private current: ToolCatalog = { tools: [], digest: toolDigest([]) };
  private refreshing: Promise<void> = Promise.resolve();
  private reopening: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    private readonly serverName: string,
    private readonly host: ServerHost,
    private readonly logger: Logger,
    /** Called after the tool list changed and was fetched again. */
    private readonly onChange: (catalog: ToolCatalog) => void,
    private readonly options: ToolCatalogProbeOptions = {},
  ) {}

  get catalog(): ToolCatalog {
    return this.current;
  }

  /** Whether the probe's session is open. */
  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Opens the probe session and fetches the tool list once; rejects when the server does not answer. */
  async start(): Promise<ToolCatalog> {
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    const session = this.host.open(serverTransport);
    this.session = session;
    const client = new Client({ name: 'flotilla-agent-probe', version: '1' });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      this.refreshing = this.refreshing.then(() => this.refresh()).catch((err: unknown) => {
        this.logger.warn({ err, server: this.serverName }, 'could not refetch the tool list after list_changed');
      });
    });
    client.onclose = () => {
      if (this.client === client) this.client = undefined;
    };
    try {
      const timeout = this.options.connectTimeoutMs;
      await Promise.all([session.ready, client.connect(clientTransport, timeout ? { timeout } : undefined)]);
      this.client = client;
      const first = await this.fetch();
      const changed = first.digest !== this.current.digest;
      this.current = first;
      if (changed && this.reopening) this.onChange(first);
      return first;
    } catch (err) {
      this.client = undefined;
      await client.close().catch(() => {});
      await session.close().catch(() => {});
      throw err;
    }
  }

  /**
   * True when the server answers a ping within `timeoutMs`. When the probe's session has ended, it tries
   * to open a new one instead (the answer is then whether that worked).
   */
  async ping(timeoutMs: number): Promise<boolean> {
    if (this.closed) return false;
    const client = this.client;
    if (!client) return this.reopen();
    try {
      await client.ping({ timeout: timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.close().catch(() => {});
    await this.session?.close().catch(() => {});
  }

  /** One attempt at a new probe session (concurrent callers share it). */
  private reopen(): Promise<boolean> {
    this.reopening ??= (async () => {
      await this.session?.close().catch(() => {});
      try {
        await this.start();
        return !this.closed;
      } catch (err) {
        this.logger.debug({ err: { message: err instanceof Error ? err.message : String(err) }, server: this.serverName }, 'probe session could not be opened');
        return false;
      }
    })().finally(() => {
      this.reopening = undefined;
    });
    return this.reopening;
  }

  private async refresh(): Promise<void> {
    const next = await this.fetch();
    if (next.digest === this.current.digest) return;
    this.current = next;
    this.logger.info({ server: this.serverName, toolCount: next.tools.length, digest: next.digest }, 'tool list changed');
    this.onChange(next);
  }

  private async fetch(): Promise<ToolCatalog> {
    const client = this.client;
    if (!client) throw new Error('probe not started');
    if (!client.getServerCapabilities()?.tools) return { tools: [], digest: toolDigest([]) };
    const tools: Tool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await client.listTools(cursor ? { cursor } : {});
      tools.push(...result.tools);
      if (!result.nextCursor || result.nextCursor === cursor) break;
      cursor = result.nextCursor;
    }
    return { tools, digest: toolDigest(tools) };
  }
}
