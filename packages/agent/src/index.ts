export { startAgent } from './startAgent.js';
export type { RunningAgent } from './Agent.js';
export type { AgentOptions, ServerSpec } from './AgentOptions.js';
export { installSignalHandlers, type SignalHandlerOptions } from './signals.js';
export type { HealthReport } from './http/AgentHttpServer.js';
export { ServerModuleError, type ServerFactoryContext } from './hosting/loadServerModule.js';
export { toolDigest, canonicalJson } from './hosting/toolDigest.js';
export type { HostedServer } from '@flotilla/protocol';
export type { AgentSecurityOptions } from './security/AgentSecurityOptions.js';
