import { SetLevelRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { SessionContext } from '../SessionContext.js';

/** Longest the router waits for one server to take a new log level, ms. */
const SET_LEVEL_TIMEOUT_MS = 5000;

/**
 * `logging/setLevel` goes to every server the client has a session with (servers filter their own log
 * messages per session), and is remembered: sessions the client opens later get it before their first
 * request.
 */
export function installLoggingHandlers(session: SessionContext): void {
  session.methods.on('logging/setLevel', SetLevelRequestSchema.shape.params, async (params) => {
    const level = params.level;
    session.state.setLogLevel(level);
    await Promise.all(
      session
        .allOwnSessions()
        .filter((s) => s.serverCapabilities.logging)
        .map((s) =>
          s
            .request('logging/setLevel', { level }, { signal: AbortSignal.timeout(SET_LEVEL_TIMEOUT_MS * 2), timeoutMs: SET_LEVEL_TIMEOUT_MS })
            .catch((err: unknown) => session.logger.debug({ err, nodeId: s.nodeId, server: s.server }, 'a server did not take the log level')),
        ),
    );
    return {};
  });
}
