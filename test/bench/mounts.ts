/**
 * Benchmark: what a stdio mount costs. In one run, on the same machine:
 * - per-call latency of `@modelcontextprotocol/server-memory`'s `read_graph` called over stdio directly
 *   (the SDK's stdio client on its own process), and through an agent that mounts the same server by stdio,
 *   shared (one process for every client session) and per-session (a process per client session);
 *   the series are interleaved in halves so machine noise hits all alike;
 * - process start (spawn to `initialize` answered) and first call of each of the three third-party servers,
 *   what a client session of a per-session mount waits for when no warm process is left.
 * Usage: npm run bench:mounts [-- --calls 1000] [-- --starts 5]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { nodeEntry, thirdPartyBin, writeAgentConfig } from '../harness/mounts.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { ms, summarize } from './stats.js';
import { printTable } from './table.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000' }, warmup: { type: 'string', default: '100' }, starts: { type: 'string', default: '5' } } });
const calls = Number(values.calls);
const warmup = Number(values.warmup);
const starts = Number(values.starts);

const dir = await mkdtemp(join(tmpdir(), 'flotilla-bench-mounts-'));
const MEMORY_BIN = thirdPartyBin('@modelcontextprotocol/server-memory');
/** Each memory process gets the same (empty) graph file, so every series reads the same thing. */
const memoryEnv = { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') };

/** A client connected to one stdio process of `script` (spawned by the SDK, as any MCP host does). */
async function stdioClient(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [script, ...args], env: { PATH: process.env.PATH ?? '', ...env }, stderr: 'ignore' }));
  return client;
}

/** A client connected to an agent's mount; retried while the mount is still starting its process. */
async function httpClient(url: string): Promise<Client> {
  for (let attempt = 0; ; attempt++) {
    const client = new Client({ name: 'bench', version: '0' });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(url)));
      return client;
    } catch (err) {
      await client.close().catch(() => {});
      if (attempt > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** `n` sequential `read_graph` calls on one client session (after warm-up calls), in ms each. */
async function series(connect: () => Promise<Client>, n: number): Promise<number[]> {
  const client = await connect();
  try {
    for (let i = 0; i < warmup; i++) await client.callTool({ name: 'read_graph', arguments: {} });
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await client.callTool({ name: 'read_graph', arguments: {} });
      out.push(performance.now() - t0);
      if (r.isError) throw new Error(`call ${i} failed: ${JSON.stringify(r.content)}`);
    }
    return out;
  } finally {
    await client.close();
  }
}

/** One cold start of a server: spawn to `initialize` answered, then its first call. */
async function coldStart(script: string, args: string[], env: Record<string, string>, call: { name: string; arguments: Record<string, unknown> }): Promise<{ start: number; first: number }> {
  const t0 = performance.now();
  const client = await stdioClient(script, args, env);
  const t1 = performance.now();
  const r = await client.callTool(call);
  const t2 = performance.now();
  await client.close();
  if (r.isError) throw new Error(`${call.name} failed: ${JSON.stringify(r.content)}`);
  return { start: t1 - t0, first: t2 - t1 };
}

const nats = await NatsServerProcess.start();
const config = await writeAgentConfig(join(dir, 'servers.json'), {
  memory: nodeEntry(MEMORY_BIN, { env: memoryEnv }),
  'memory-ps': nodeEntry(MEMORY_BIN, { env: memoryEnv, flotilla: { sessions: 'per-session', pool: { warm: 2, max: 4 } } }),
});
const agent = FlotillaProcess.spawn('agent', ['agent', '--node-id', 'bench-mounts', '--config', config, '--nats', nats.url, '--port', '0']);

try {
  const agentUrl = String((await agent.ready(60_000)).url);
  const direct: number[] = [];
  const shared: number[] = [];
  const perSession: number[] = [];
  const half = Math.floor(calls / 2);
  for (const round of [0, 1]) {
    const n = round === 0 ? half : calls - half;
    direct.push(...(await series(() => stdioClient(MEMORY_BIN, [], memoryEnv), n)));
    shared.push(...(await series(() => httpClient(`${agentUrl}/mcp/memory`), n)));
    perSession.push(...(await series(() => httpClient(`${agentUrl}/mcp/memory-ps`), n)));
  }
  const d = summarize(direct);
  const rows = [['series (server-memory read_graph)', 'calls', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'p50 overhead ms']];
  for (const [label, samples] of [['stdio, direct', direct], ['agent mount, shared', shared], ['agent mount, per-session', perSession]] as const) {
    const s = summarize(samples);
    rows.push([label, String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.mean), label === 'stdio, direct' ? '' : ms(s.p50 - d.p50)]);
  }
  printTable('Per-call latency: a stdio server called directly vs through an agent mount', rows);

  const fsRoot = await mkdtemp(join(dir, 'files-'));
  const servers: Array<{ label: string; script: string; args: string[]; env: Record<string, string>; call: { name: string; arguments: Record<string, unknown> } }> = [
    { label: 'server-memory', script: MEMORY_BIN, args: [], env: memoryEnv, call: { name: 'read_graph', arguments: {} } },
    { label: 'server-filesystem', script: thirdPartyBin('@modelcontextprotocol/server-filesystem'), args: [fsRoot], env: {}, call: { name: 'list_allowed_directories', arguments: {} } },
    {
      label: 'server-sequential-thinking',
      script: thirdPartyBin('@modelcontextprotocol/server-sequential-thinking'),
      args: [],
      env: { DISABLE_THOUGHT_LOGGING: 'true' },
      call: { name: 'sequentialthinking', arguments: { thought: 'one', thoughtNumber: 1, totalThoughts: 1, nextThoughtNeeded: false } },
    },
  ];
  const startRows = [['server (node, cold process)', 'runs', 'start p50 ms', 'start max ms', 'first call p50 ms', 'first call max ms']];
  for (const s of servers) {
    const runs: Array<{ start: number; first: number }> = [];
    for (let i = 0; i < starts; i++) runs.push(await coldStart(s.script, s.args, s.env, s.call));
    const st = summarize(runs.map((r) => r.start));
    const fc = summarize(runs.map((r) => r.first));
    startRows.push([s.label, String(runs.length), ms(st.p50), ms(st.max), ms(fc.p50), ms(fc.max)]);
  }
  printTable('Process start (spawn to initialize answered) and first call', startRows);
} finally {
  await agent.stop();
  await nats.dispose();
  await rm(dir, { recursive: true, force: true });
}
