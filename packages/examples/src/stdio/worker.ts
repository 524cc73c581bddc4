#!/usr/bin/env node
/**
 * Example stdio MCP server `worker`: one process is one MCP session over stdin/stdout, the way most
 * third-party servers run. Agents mount it as a command (`node .../dist/stdio/worker.js`), so the tests of
 * stdio mounts have a server whose calls take as long as they ask, that says which process ran them, and
 * whose tool list changes on request.
 *
 * Tools:
 * - `work` (idempotent): `steps` × `stepMs`, progress after each step (when the call has a progress
 *   token), stops when cancelled; returns `{ pid, steps }`.
 * - `append` (neither read-only nor idempotent): waits `stepMs`, then appends `entry` to this process's
 *   list; returns `{ pid, count }`.
 * - `whoami` (read-only): `{ pid, startedAt, calls }`, `calls` counting every tool call this process ran.
 * - `remember` / `recall`: one value kept in the process (the state a shared process shares).
 * - `chatty`: a log message (`notifications/message`) during the call, and a result.
 * - `ask_model`: asks the client for a sampling completion (only a client of its own can answer).
 * - `grow` / `shrink`: add or remove the tool `extra_<name>`; the server sends `tools/list_changed`.
 *
 * Everything it prints that is not MCP goes to stderr.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { sleep } from '../sleep.js';

const startedAt = Date.now();
const state = { calls: 0, entries: [] as string[], remembered: null as string | null };
const extras = new Map<string, RegisteredTool>();

function json(value: Record<string, unknown>): { content: Array<{ type: 'text'; text: string }>; structuredContent: Record<string, unknown> } {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}

const server = new McpServer({ name: 'worker', version: '0.1.0' }, { capabilities: { logging: {}, tools: { listChanged: true } } });

server.registerTool(
  'work',
  {
    description: 'Works steps × stepMs milliseconds with progress after each step; stops when cancelled.',
    inputSchema: { steps: z.number().int().min(1).max(10_000).default(5), stepMs: z.number().int().min(0).max(600_000).default(100) },
    annotations: { readOnlyHint: false, idempotentHint: true, openWorldHint: false },
  },
  async ({ steps, stepMs }, extra) => {
    state.calls += 1;
    const token = extra._meta?.progressToken;
    for (let step = 1; step <= steps; step++) {
      await sleep(stepMs, extra.signal);
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: step, total: steps } });
      }
    }
    return json({ pid: process.pid, steps });
  },
);

server.registerTool(
  'append',
  {
    description: 'Waits stepMs, then appends entry to this process\'s list. Not idempotent.',
    inputSchema: { entry: z.string().min(1).max(200), stepMs: z.number().int().min(0).max(600_000).default(0) },
    annotations: { readOnlyHint: false, idempotentHint: false, destructiveHint: false, openWorldHint: false },
  },
  async ({ entry, stepMs }, extra) => {
    state.calls += 1;
    await sleep(stepMs, extra.signal);
    state.entries.push(entry);
    return json({ pid: process.pid, count: state.entries.length });
  },
);

server.registerTool(
  'whoami',
  { description: 'Which process this is.', annotations: { readOnlyHint: true, openWorldHint: false } },
  async () => {
    state.calls += 1;
    return json({ pid: process.pid, startedAt, calls: state.calls });
  },
);

server.registerTool(
  'remember',
  { description: 'Keeps one value in this process.', inputSchema: { value: z.string().max(200) }, annotations: { idempotentHint: true } },
  async ({ value }) => {
    state.calls += 1;
    state.remembered = value;
    return json({ pid: process.pid, remembered: value });
  },
);

server.registerTool(
  'recall',
  { description: 'The value this process keeps, or null.', annotations: { readOnlyHint: true } },
  async () => {
    state.calls += 1;
    return json({ pid: process.pid, remembered: state.remembered });
  },
);

server.registerTool(
  'chatty',
  { description: 'Sends a log message during the call.', inputSchema: { tag: z.string().max(100).default('chatty') }, annotations: { readOnlyHint: true } },
  async ({ tag }) => {
    state.calls += 1;
    await server.server.sendLoggingMessage({ level: 'info', logger: 'worker', data: { tag, pid: process.pid } });
    return json({ pid: process.pid, tag });
  },
);

server.registerTool(
  'ask_model',
  { description: 'Asks the client for a sampling completion.', inputSchema: { prompt: z.string().max(1000).default('hello') } },
  async ({ prompt }) => {
    state.calls += 1;
    const answer = await server.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 10 });
    return json({ pid: process.pid, model: answer.model });
  },
);

server.registerTool(
  'grow',
  { description: 'Adds the tool extra_<name>.', inputSchema: { name: z.string().regex(/^[a-z0-9]{1,20}$/) } },
  async ({ name }) => {
    state.calls += 1;
    if (!extras.has(name)) {
      extras.set(name, server.registerTool(`extra_${name}`, { description: `Extra tool ${name}.`, annotations: { readOnlyHint: true } }, async () => json({ pid: process.pid, extra: name })));
    }
    return json({ pid: process.pid, extras: [...extras.keys()] });
  },
);

server.registerTool(
  'shrink',
  { description: 'Removes the tool extra_<name>.', inputSchema: { name: z.string().regex(/^[a-z0-9]{1,20}$/) } },
  async ({ name }) => {
    state.calls += 1;
    extras.get(name)?.remove();
    extras.delete(name);
    return json({ pid: process.pid, extras: [...extras.keys()] });
  },
);

await server.connect(new StdioServerTransport());
process.stderr.write(`worker MCP server ${process.pid} running on stdio\n`);
