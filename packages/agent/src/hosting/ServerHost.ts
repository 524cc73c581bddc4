import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JsonRpcErrorObject } from '../http/SessionBudget.js';

/** The server side of one MCP session, as a {@link ServerHost} opened it. */
export interface HostedSession {
  /**
   * Settles once the server finished connecting. For fastmcp this is after the client's `initialize` was
   * handled (fastmcp polls for client capabilities), so callers must not wait for it before passing the
   * transport its first request. A mount that cannot open the session rejects it with a
   * `SessionRefusedError` (answered with HTTP 503).
   */
  readonly ready: Promise<void>;
  /** Closes this session's server (and with it the transport). */
  close(): Promise<void>;
}

/**
 * How the agent runs one server: one server session per MCP session. `fastmcp` and `sdk` host a module in
 * the agent's process; `stdio` and `remote` mount a server that runs elsewhere (a command, a URL).
 */
export interface ServerHost {
  readonly style: 'fastmcp' | 'sdk' | 'stdio' | 'remote';
  /** Connects a new server session to `transport`. */
  open(transport: Transport): HostedSession;
  /** Why a new session would be refused now (answered with HTTP 503), if it would be. */
  refusal?(): JsonRpcErrorObject | undefined;
  /** Starts what the host runs (mounted processes); resolves once the first attempt settled, success or not. */
  start?(): Promise<void>;
  /** Stops what the host runs, once its sessions are closed. */
  stop?(): Promise<void>;
  /** What `/readyz` shows about the host (processes, restarts). */
  status?(): Record<string, unknown>;
}
