import { Writable } from 'node:stream';
import { createLogger } from '@flotilla/telemetry';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startAgent, type AgentOptions, type RunningAgent } from '../../src/index.js';

/** One JSON log line of an agent under test. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** Collects an in-process agent's log lines so tests can wait for them. */
export class LogCollector {
  readonly lines: LogLine[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, done) => {
      for (const raw of chunk.toString().split('\n')) {
        if (!raw.trim()) continue;
        try {
          this.lines.push(JSON.parse(raw) as LogLine);
        } catch {
          this.lines.push({ msg: raw });
        }
        if (process.env.FLOTILLA_TEST_VERBOSE) process.stderr.write(`${raw}\n`);
      }
      done();
    },
  });

  find(match: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(match);
  }

  async waitFor(match: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    let found: LogLine | undefined;
    await waitUntil(() => (found = this.find(match)) !== undefined, timeoutMs, `log line not seen; last lines: ${JSON.stringify(this.lines.slice(-5))}`);
    return found!;
  }
}

/** Polls `check` until it is true; fails after `timeoutMs` (a safety net, not a timing assertion). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An agent started in this process with its logs collected. */
export interface TestAgent {
  agent: RunningAgent;
  logs: LogCollector;
}

let counter = 0;

/** Starts an agent with test defaults (fast heartbeats, any free ports) and a collecting logger. */
export async function startTestAgent(options: Partial<AgentOptions> & Pick<AgentOptions, 'natsUrl' | 'servers'>): Promise<TestAgent> {
  const logs = new LogCollector();
  const nodeId = options.nodeId ?? `test-node-${process.pid}-${++counter}`;
  const logger = createLogger({ name: 'agent', level: process.env.LOG_LEVEL ?? 'debug', base: { nodeId }, destination: logs.stream });
  const agent = await startAgent({ heartbeatIntervalMs: 250, staleAfterMs: 1500, drainGraceMs: 10_000, ...options, nodeId, logger });
  return { agent, logs };
}

/** An MCP client connected over Streamable HTTP to `/mcp/<server>` of an agent. */
export async function connectClient(agent: RunningAgent, server: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'agent-test', version: '1.0.0' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${agent.url}/mcp/${server}`)));
  return client;
}

/** Closes a client and ends its session on the agent (DELETE), ignoring errors of an agent already gone. */
export async function closeClient(client: Client): Promise<void> {
  const transport = client.transport;
  if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => {});
  await client.close().catch(() => {});
}
