import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { LoggingLevelSchema, SetLevelRequestSchema, type LoggingLevel, type RequestId } from '@modelcontextprotocol/sdk/types.js';

/** The MCP log levels, least severe first. */
export const LOG_LEVELS: readonly LoggingLevel[] = LoggingLevelSchema.options;

/**
 * The log level of one MCP session (set by `logging/setLevel`), and sending log messages that honour it.
 *
 * The SDK keeps a level per transport session too, but applies it only in `sendLoggingMessage`, which
 * cannot tie a message to a request (no `relatedRequestId`), while `extra.sendNotification` (which can)
 * applies no level at all. The server instance is the session here, so it keeps the level itself and
 * filters every message it sends, related to a call or not.
 */
export class SessionLog {
  private level: LoggingLevel | undefined;

  constructor(private readonly server: Server) {
    server.setRequestHandler(SetLevelRequestSchema, (request) => {
      this.level = request.params.level;
      return {};
    });
  }

  /** The level the client set, or undefined when it never did (then everything is sent). */
  get current(): LoggingLevel | undefined {
    return this.level;
  }

  /** True when a message of `level` passes the session's level. */
  allows(level: LoggingLevel): boolean {
    return this.level === undefined || LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(this.level);
  }

  /**
   * Sends `notifications/message` when `level` passes the session's level: on the stream of the request
   * `relatedRequestId` when given, else on the session's standalone stream. Returns whether it was sent.
   */
  async send(level: LoggingLevel, logger: string, data: unknown, relatedRequestId?: RequestId): Promise<boolean> {
    if (!this.allows(level)) return false;
    await this.server.notification({ method: 'notifications/message', params: { level, logger, data } }, relatedRequestId === undefined ? undefined : { relatedRequestId });
    return true;
  }
}
