import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/** The server side of one MCP session, as a {@link ServerHost} opened it. */
export interface HostedSession {
  /**
   * Settles once the server finished connecting. For fastmcp this is after the client's `initialize` was
   * handled (fastmcp polls for client capabilities), so callers must not wait for it before passing the
   * transport its first request.
   */
  readonly ready: Promise<void>;
  /** Closes this session's server (and with it the transport). */
  close(): Promise<void>;
}

/** How the agent runs one hosted server: one server session per MCP session. */
export interface ServerHost {
  /** `fastmcp`: one FastMCP instance serving many sessions; `sdk`: a factory building an SDK server per session. */
  readonly style: 'fastmcp' | 'sdk';
  /** Connects a new server session to `transport`. */
  open(transport: Transport): HostedSession;
}
