/**
 * Example server `ledger` (SDK `McpServer`, one per session through the default-exported factory): a tool
 * with side effects that must not run twice, for the router's failover rules.
 *
 * `append` works `steps` × `stepMs` (progress after each step), then appends `entry` to this process's
 * ledger. It is neither read-only nor idempotent: running it again appends again, so a router must not
 * retry it after a node accepted it. `entries` (read-only) tells how many entries this process appended
 * and the last ones, so tests can count side effects per node.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

const MAX_REMEMBERED = 1000;

/** Entries appended in this process, shared by every session of this module. */
const ledger = { appended: 0, cancelled: 0, last: [] as string[] };

/** Waits `ms`, or resolves false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Builds one `ledger` server (one per MCP session). */
export function createLedgerServer(): McpServer {
  const server = new McpServer({ name: 'ledger', version: '0.1.0' });

  server.registerTool(
    'append',
    {
      title: 'Append to the ledger',
      description: 'Works for steps × stepMs milliseconds (progress after each step), then appends the entry. Not idempotent: each call appends.',
      inputSchema: {
        entry: z.string().min(1).max(200).describe('What to append'),
        steps: z.number().int().min(1).max(10_000).default(1).describe('Number of steps before appending'),
        stepMs: z.number().int().min(0).max(60_000).default(0).describe('Duration of one step, ms'),
      },
      annotations: { readOnlyHint: false, idempotentHint: false, destructiveHint: false, openWorldHint: false },
    },
    async ({ entry, steps, stepMs }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let step = 1; step <= steps; step++) {
        if (!(await sleep(stepMs, extra.signal))) {
          ledger.cancelled += 1;
          return { content: [{ type: 'text', text: 'cancelled before appending' }], isError: true };
        }
        if (progressToken !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: step, total: steps } });
        }
      }
      ledger.appended += 1;
      ledger.last.push(entry);
      if (ledger.last.length > MAX_REMEMBERED) ledger.last.shift();
      return { content: [{ type: 'text', text: `appended ${entry} (#${ledger.appended})` }] };
    },
  );

  server.registerTool(
    'entries',
    {
      title: 'Ledger entries',
      description: 'How many entries this process appended (and cancelled before appending), with the last ones.',
      outputSchema: { appended: z.number().int(), cancelled: z.number().int(), last: z.array(z.string()) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      const snapshot = { appended: ledger.appended, cancelled: ledger.cancelled, last: [...ledger.last] };
      return { content: [{ type: 'text', text: JSON.stringify(snapshot) }], structuredContent: snapshot };
    },
  );

  return server;
}

export default createLedgerServer;
