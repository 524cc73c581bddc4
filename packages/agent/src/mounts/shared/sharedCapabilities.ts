import type { InitializeResult, ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';

/**
 * Client requests a shared process cannot serve per client: what they change or read is state of the
 * one MCP session every client shares. Each maps to why.
 */
export const NOT_SHARED_METHODS: Readonly<Record<string, string>> = {
  'logging/setLevel': 'the log level is state of the MCP session, and this process has one session for all clients',
  'resources/subscribe': 'subscriptions are state of the MCP session, and updates could not be told apart per client',
  'resources/unsubscribe': 'subscriptions are state of the MCP session, and updates could not be told apart per client',
  'tasks/get': 'tasks are state of the MCP session',
  'tasks/result': 'tasks are state of the MCP session',
  'tasks/cancel': 'tasks are state of the MCP session',
  'tasks/list': 'tasks are state of the MCP session, and the list would show every client\'s tasks',
};

/**
 * What a shared process offers each client: the server's capabilities without the per-session ones
 * (`logging`: the level is per session and log messages cannot be told apart per client; resource
 * `subscribe`; `tasks`). Clients therefore do not ask for them, and routers do not send them.
 */
export function sharedCapabilities(capabilities: ServerCapabilities): ServerCapabilities {
  const { logging: _logging, tasks: _tasks, resources, ...rest } = capabilities;
  const out: ServerCapabilities = { ...rest };
  if (resources) {
    const { subscribe: _subscribe, ...kept } = resources;
    out.resources = kept;
  }
  return out;
}

/** The `initialize` result a client of a shared process gets: the server's, with shared capabilities only. */
export function sharedInitializeResult(server: InitializeResult): InitializeResult {
  return {
    protocolVersion: server.protocolVersion,
    capabilities: sharedCapabilities(server.capabilities),
    serverInfo: server.serverInfo,
    ...(server.instructions !== undefined ? { instructions: server.instructions } : {}),
  };
}
