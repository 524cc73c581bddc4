import { FlotillaErrorCode } from '@flotilla/protocol';

/** A JSON-RPC error object. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

/**
 * The node-wide cap on MCP sessions, shared by every hosted server's endpoint. A session takes a place
 * before its server is built (so a burst of `initialize` requests cannot overshoot) and gives it back
 * exactly once, when it closes or fails to open.
 */
export class SessionBudget {
  private taken = 0;

  constructor(
    readonly nodeId: string,
    /** Most sessions open at once. */
    readonly limit: number,
  ) {}

  /** Sessions holding a place now (opening or open). */
  get open(): number {
    return this.taken;
  }

  /** Takes a place; returns the function that gives it back (idempotent), or undefined when full. */
  take(): (() => void) | undefined {
    if (this.taken >= this.limit) return undefined;
    this.taken += 1;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.taken -= 1;
    };
  }

  /** The error an `initialize` refused for the cap gets (with HTTP 503). */
  refusal(): JsonRpcErrorObject {
    return {
      code: FlotillaErrorCode.SessionLimit,
      message: `node ${this.nodeId} has reached its limit of ${this.limit} MCP sessions (all hosted servers together); no session was opened: retry later or on another node, and end sessions you no longer use (DELETE)`,
      data: { nodeId: this.nodeId, limit: this.limit, open: this.taken, retryable: true },
    };
  }
}
