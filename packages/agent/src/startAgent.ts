import { createLogger } from '@flotilla/telemetry';
import { Agent, type RunningAgent } from './Agent.js';
import { resolveAgentOptions, type AgentOptions } from './AgentOptions.js';

/**
 * Starts an agent: loads and hosts the servers, serves them over HTTP with gRPC health, and joins the
 * mesh over NATS. Resolves once it serves (logging `agent ready`); NATS or the registry being down does
 * not stop it from serving, it keeps trying to join. Rejects on bad options, a server module that cannot
 * be hosted, a port in use, or a node id already held by another live agent.
 */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const resolved = resolveAgentOptions(options);
  const logger = options.logger ?? createLogger({ name: 'agent', base: { nodeId: resolved.nodeId } });
  const agent = new Agent(resolved, logger);
  try {
    await agent.start();
  } catch (err) {
    logger.error({ err }, 'agent failed to start');
    await agent.stop().catch(() => {});
    throw err;
  }
  return agent;
}
