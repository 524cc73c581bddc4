/**
 * Example server `slow` (SDK `McpServer`, one per session through the default-exported factory).
 *
 * `work` runs `steps` steps of `stepMs` each, reporting progress after every step, and stops at once when
 * its request is cancelled. `status` tells how many `work` calls are running, completed and cancelled in
 * this process (and the call ids of the last cancelled ones), so tests and operators can see that a
 * cancellation really stopped the work.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { sleep } from './sleep.js';

const CALL_ID_META = 'flotilla/callId';
/**
 * Multiplies every step's duration in this process: `SLOW_EXAMPLE_FACTOR=5` makes a node 5x slower than
 * its peers, which is how the balancing benchmark builds a heterogeneous fleet.
 */
const SPEED_FACTOR = (() => {
  const raw = Number(process.env.SLOW_EXAMPLE_FACTOR ?? '1');
  return Number.isFinite(raw) && raw > 0 ? raw : 1;
})();
const MAX_REMEMBERED = 50;

/** Counters shared by every session of this module. */
const counters = { running: 0, completed: 0, cancelled: 0, cancelledCallIds: [] as string[] };

/** Builds one `slow` server (one per MCP session). */
export function createSlowServer(): McpServer {
  const server = new McpServer({ name: 'slow', version: '0.1.0' });

  server.registerTool(
    'work',
    {
      title: 'Slow work',
      description: 'Works for steps × stepMs milliseconds, reporting progress after each step; stops when cancelled.',
      inputSchema: {
        steps: z.number().int().min(1).max(100_000).default(10).describe('Number of steps'),
        stepMs: z.number().int().min(0).max(600_000).default(100).describe('Duration of one step, ms'),
      },
      annotations: { readOnlyHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ steps, stepMs }, extra) => {
      const progressToken = extra._meta?.progressToken;
      const metaCallId = extra._meta?.[CALL_ID_META];
      const callId = typeof metaCallId === 'string' ? metaCallId : `${extra.sessionId ?? 'session'}:${String(extra.requestId)}`;
      counters.running += 1;
      try {
        for (let step = 1; step <= steps; step++) {
          await sleep(stepMs * SPEED_FACTOR, extra.signal);
          if (progressToken !== undefined) {
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken, progress: step, total: steps, message: `step ${step} of ${steps}` },
            });
          }
        }
        counters.completed += 1;
        return { content: [{ type: 'text', text: `done: ${steps} steps of ${stepMs} ms` }] };
      } catch (err) {
        if (!extra.signal.aborted) throw err;
        counters.cancelled += 1;
        counters.cancelledCallIds.push(callId);
        if (counters.cancelledCallIds.length > MAX_REMEMBERED) counters.cancelledCallIds.shift();
        process.stderr.write(`${JSON.stringify({ name: 'slow', msg: 'work cancelled', callId })}\n`);
        // Nobody reads this answer (the SDK drops responses to cancelled requests); it only ends the handler.
        return { content: [{ type: 'text', text: 'cancelled' }], isError: true };
      } finally {
        counters.running -= 1;
      }
    },
  );

  server.registerTool(
    'status',
    {
      title: 'Slow work status',
      description: 'Counts of work calls running, completed and cancelled in this process.',
      outputSchema: {
        running: z.number().int(),
        completed: z.number().int(),
        cancelled: z.number().int(),
        cancelledCallIds: z.array(z.string()),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      const snapshot = { ...counters, cancelledCallIds: [...counters.cancelledCallIds] };
      return { content: [{ type: 'text', text: JSON.stringify(snapshot) }], structuredContent: snapshot };
    },
  );

  return server;
}

export default createSlowServer;
