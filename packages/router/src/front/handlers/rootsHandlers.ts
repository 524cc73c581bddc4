import type { SessionContext } from '../SessionContext.js';

/**
 * The client's `notifications/roots/list_changed` goes to every server it has a session with (servers ask
 * the client for its roots over those sessions, and the router relays the question to this client).
 */
export function installRootsHandlers(session: SessionContext): void {
  session.methods.onNotification('notifications/roots/list_changed', async () => {
    await Promise.all(session.allOwnSessions().map((s) => s.notify('notifications/roots/list_changed')));
  });
}
