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

const MAX_PAGES = 100;

/**
 * An in-process MCP client on its own server session (SDK in-memory transport): lists the server's tools
 * for the registry record's digest, follows `tools/list_changed`, and pings to tell whether the server
 * still answers. Its calls bypass the node's call tracking: they are the agent's, not the fleet's.
 */
export class ToolCatalogProbe {
  private client: Client | undefined;
  private session: HostedSession | undefined;
  private current: ToolCatalog = { tools: [], digest: toolDigest([]) };
  private refreshing: Promise<void> = Promise.resolve();

  constructor(
    private readonly serverName: string,
    private readonly host: ServerHost,
    private readonly logger: Logger,
    /** Called after the tool list changed and was fetched again. */
    private readonly onChange: (catalog: ToolCatalog) => void,
  ) {}

  get catalog(): ToolCatalog {
    return this.current;
  }

  /** Opens the probe session and fetches the tool list once. */
  async start(): Promise<ToolCatalog> {
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    this.session = this.host.open(serverTransport);
    const client = new Client({ name: 'flotilla-agent-probe', version: '1' });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      this.refreshing = this.refreshing.then(() => this.refresh()).catch((err: unknown) => {
        this.logger.warn({ err, server: this.serverName }, 'could not refetch the tool list after list_changed');
      });
    });
    await Promise.all([this.session.ready, client.connect(clientTransport)]);
    this.client = client;
    this.current = await this.fetch();
    return this.current;
  }

  /** True when the server answers a ping within `timeoutMs`. */
  async ping(timeoutMs: number): Promise<boolean> {
    if (!this.client) return false;
    try {
      await this.client.ping({ timeout: timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.client?.close().catch(() => {});
    await this.session?.close().catch(() => {});
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
