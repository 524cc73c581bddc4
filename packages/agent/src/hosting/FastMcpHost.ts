import type { FastMCP, FastMCPSession } from 'fastmcp';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { HostedSession, ServerHost } from './ServerHost.js';

/**
 * Hosts a fastmcp `FastMCP` instance on transports the agent creates. `FastMCP.connect` builds a
 * `FastMCPSession` from the instance's tools, resources and prompts and registers it, so tools added later
 * still reach every open session (as `notifications/tools/list_changed`).
 *
 * fastmcp's own httpStream server is deliberately not used: it spends ~1.1 s per session open and its
 * readiness endpoint is no probe. `FastMCP.connect` itself only resolves after the client's `initialize`
 * (it polls the client's capabilities), so the caller hands the transport its requests without waiting.
 */
export class FastMcpHost implements ServerHost {
  readonly style = 'fastmcp';

  constructor(private readonly server: FastMCP) {}

  open(transport: Transport): HostedSession {
    const connecting: Promise<FastMCPSession> = this.server.connect(transport);
    return {
      ready: connecting.then(() => undefined),
      async close() {
        // The transport closes first: `connect` may still wait on the client. fastmcp asks a client that
        // declared roots for them and waits for the answer (60 s), and a client without a GET stream
        // never gets the question, so a drain used to wait that long. Closing fails such requests at once.
        await transport.close().catch(() => {});
        const session = await connecting.catch(() => undefined);
        // FastMCPSession.close also stops its ping interval, which closing the transport alone leaves running.
        await session?.close();
      },
    };
  }
}
