import { performance } from 'node:perf_hooks';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { refusedTool, unknownTool } from '../../errors/routingErrors.js';
import { UNKNOWN_TOOL } from '../../forwarding/CallObserver.js';
import type { SessionContext } from '../SessionContext.js';
import { listPage } from '../ListPage.js';
import { recordTask } from './taskHandlers.js';

/**
 * `tools/list` (what the servers show this client) and `tools/call` (checked against the tool's input
 * schema, then forwarded to a replica on the client's own upstream session).
 */
export function installToolHandlers(session: SessionContext): void {
  const { forwarder, validator, observer, toolSchemas } = session.services;

  session.methods.on('tools/list', ListToolsRequestSchema.shape.params, async (params) => {
    const page = listPage((await session.view.tools()).map((t) => t.definition), params?.cursor);
    return { tools: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  session.methods.on('tools/call', CallToolRequestSchema.shape.params, async (params, request) => {
    const started = performance.now();
    const { name, arguments: args } = params;
    const refused = (label: string): void => observer?.finished(label, undefined, 'invalid_request', (performance.now() - started) / 1000);
    const tool = await session.view.tool(name);
    if (!tool) {
      refused(UNKNOWN_TOOL);
      const refusal = toolSchemas.refusal(name);
      throw refusal ? refusedTool(name, refusal) : unknownTool(name);
    }
    const check = await validator.check(tool.definition, args);
    if (!check.ok) {
      refused(name);
      return invalidArgumentsResult(name, check.problems);
    }
    return forwarder.forward({
      target: name,
      server: tool.server,
      replicas: tool.replicas,
      request: { method: 'tools/call', params: { ...params, name: tool.upstreamName } },
      retryAfterAcceptance: tool.retryableAfterAcceptance,
      client: session.callContext(request),
      placement: session.placementFor(tool.server),
      onAnswered: (nodeId, result) => recordTask(session, result, { nodeId, server: tool.server }),
    });
  });
}

/**
 * Arguments that do not match the tool's input schema are a tool execution error (spec 2025-11-25,
 * SEP-1303), not a protocol error: the model sees what was wrong and can correct itself.
 */
function invalidArgumentsResult(tool: string, problems: string[]): CallToolResult {
  return { content: [{ type: 'text', text: `Invalid arguments for tool ${tool}: ${problems.join('; ')}` }], isError: true };
}
