/**
 * The worker thread of {@link OffLoopArgumentValidator}: checks tool-call arguments against their tools'
 * input schemas (Ajv with RE2), so that however long a check takes, the router's event loop never waits
 * for it. Holds the tools it was sent, keyed, at most {@link MAX_TOOLS} (the oldest go first).
 */
import { parentPort } from 'node:worker_threads';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { createLogger } from '@flotilla/telemetry';
import { ToolArgumentValidator } from '../ToolArgumentValidator.js';
import type { ArgumentCheckReply, ArgumentCheckRequest } from './ArgumentCheckMessages.js';

const MAX_TOOLS = 2000;
const port = parentPort;
if (!port) throw new Error('argumentCheckWorker runs only as a worker thread');
const validator = new ToolArgumentValidator(createLogger({ name: 'router-validation' }));
const tools = new Map<number, Tool>();

port.on('message', (request: ArgumentCheckRequest) => {
  let reply: ArgumentCheckReply;
  if (request.tool) {
    tools.delete(request.key);
    tools.set(request.key, request.tool as Tool);
    if (tools.size > MAX_TOOLS) tools.delete(tools.keys().next().value!);
  }
  const tool = tools.get(request.key);
  if (!tool) reply = { id: request.id, missing: true };
  else reply = { id: request.id, result: validator.check(tool, request.args) };
  port.postMessage(reply);
});
// Loaded: checks may be timed from now on (a worker's start is not the check's time).
port.postMessage({ ready: true } satisfies ArgumentCheckReply);
