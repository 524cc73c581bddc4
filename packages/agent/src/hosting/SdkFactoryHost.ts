import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { HostedSession, ServerHost } from './ServerHost.js';

/** What the agent needs of an SDK `McpServer` or low-level `Server`. */
export interface SdkServerLike {
  connect(transport: Transport): Promise<void>;
  close(): Promise<void>;
}

/**
 * Hosts an SDK server through its factory: an SDK server connects to exactly one transport, so every MCP
 * session gets its own server instance.
 */
export class SdkFactoryHost implements ServerHost {
  readonly style = 'sdk';

  constructor(private readonly build: () => Promise<SdkServerLike>) {}

  open(transport: Transport): HostedSession {
    let server: SdkServerLike | undefined;
    const ready = (async () => {
      server = await this.build();
      await server.connect(transport);
    })();
    return {
      ready,
      async close() {
        await ready.catch(() => {});
        if (server) await server.close();
        else await transport.close().catch(() => {});
      },
    };
  }
}
