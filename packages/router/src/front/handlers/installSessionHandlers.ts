import { z } from 'zod';
import type { SessionContext } from '../SessionContext.js';
import { installCompletionHandler } from './completionHandler.js';
import { installLoggingHandlers } from './loggingHandlers.js';
import { installPromptHandlers } from './promptHandlers.js';
import { installResourceHandlers } from './resourceHandlers.js';
import { installRootsHandlers } from './rootsHandlers.js';
import { installTaskHandlers } from './taskHandlers.js';
import { installToolHandlers } from './toolHandlers.js';

const ANY_PARAMS = z.looseObject({});

/** Installs every request and notification handler of a client session's MCP server. */
export function installSessionHandlers(session: SessionContext): void {
  session.methods.on('ping', ANY_PARAMS, () => ({}));
  installToolHandlers(session);
  installResourceHandlers(session);
  installPromptHandlers(session);
  installCompletionHandler(session);
  installLoggingHandlers(session);
  installTaskHandlers(session);
  installRootsHandlers(session);
}
