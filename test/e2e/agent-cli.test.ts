/**
 * The agent's session and affinity options as an operator gives them on the command line: a real
 * `flotilla agent` process on a real nats-server announces each server's affinity in its registry
 * record (read back with `flotilla nodes --json`), enforces `--max-sessions` with a clear 503, and
 * refuses bad values before starting.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from '../harness/eventually.js';
import { CLI_BIN, FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { connectStatefulClient } from '../harness/statefulClients.js';

const run = promisify(execFile);
/** JSON-RPC error code SessionLimit (`FlotillaErrorCode.SessionLimit` in @flotilla/protocol). */
const SESSION_LIMIT = -32016;

interface ListedNode {
  record: { nodeId: string; servers: Array<{ name: string; affinity?: string }> };
}

let nats: NatsServerProcess;
let agent: FlotillaProcess;
let agentUrl: string;

/** Runs `flotilla <args>` to its end; resolves with its exit code and stderr. */
async function cliExit(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI_BIN, ...args], { timeout: 60_000 });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

/** The node's record as `flotilla nodes --json` shows it. */
async function record(nodeId: string): Promise<ListedNode['record'] | undefined> {
  const r = await run(process.execPath, [CLI_BIN, 'nodes', '--nats', nats.url, '--json'], { timeout: 60_000 });
  return (JSON.parse(r.stdout) as ListedNode[]).find((n) => n.record.nodeId === nodeId)?.record;
}

before(async () => {
  nats = await NatsServerProcess.start();
  agent = FlotillaProcess.spawn('cli-agent', [
    'agent', '--node-id', 'cli-agent', '--nats', nats.url, '--port', '0', '--grpc-port', '0',
    '--server', 'stateful=@flotilla/examples/stateful', '--server', 'echo=@flotilla/examples/echo',
    '--affinity', 'stateful=sticky', '--max-sessions', '1', '--session-idle-timeout', '60000',
  ]);
  agentUrl = String((await agent.ready(60_000)).url);
});

after(async () => {
  await agent?.stop();
  await nats?.dispose();
});

describe('flotilla agent: sessions and affinity options', () => {
  test('--affinity is announced per server in the registry record; servers without it are none', async () => {
    const servers = await eventually(async () => {
      const r = await record('cli-agent');
      assert.ok(r, 'the agent is registered');
      return r.servers;
    }, 20_000);
    assert.deepEqual(servers.map((s) => [s.name, s.affinity]), [['stateful', 'sticky'], ['echo', 'none']]);
    const loaded = agent.lines.filter((l) => l.msg === 'server loaded').map((l) => [l.server, l.affinity]);
    assert.deepEqual(loaded, [['stateful', 'sticky'], ['echo', 'none']]);
  });

  test('--max-sessions caps sessions: the next initialize gets 503 with SessionLimit', async () => {
    const holder = await connectStatefulClient({ url: `${agentUrl}/mcp/stateful`, name: 'holder' });
    try {
      assert.equal((await holder.call<{ nodeId: string }>('whoami')).structured.nodeId, 'cli-agent');
      const refused = await fetch(`${agentUrl}/mcp/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
      });
      assert.equal(refused.status, 503);
      const body = (await refused.json()) as { id: unknown; error: { code: number; message: string; data: { limit: number } } };
      assert.equal(body.id, 7);
      assert.equal(body.error.code, SESSION_LIMIT);
      assert.equal(body.error.data.limit, 1);
      assert.match(body.error.message, /limit of 1 MCP sessions/);
      const metrics = await (await fetch(`${agentUrl}/metrics`)).text();
      assert.match(metrics, /^flotilla_agent_session_limit 1$/m);
      assert.match(metrics, /^flotilla_agent_sessions_refused_total\{server="echo"\} 1$/m);
    } finally {
      await holder.close();
    }
  });

  test('bad values stop the command with a message naming the option, before anything starts', async () => {
    const base = ['agent', '--node-id', 'never', '--nats', nats.url, '--server', 'stateful=@flotilla/examples/stateful'];
    const cases: Array<[string[], RegExp]> = [
      [['--affinity', 'nope=sticky'], /--affinity names "nope", not hosted here \(hosted: stateful\)/],
      [['--affinity', 'stateful=sometimes'], /--affinity stateful=sometimes: the mode must be one of none, sticky/],
      [['--affinity', 'stateful'], /expected <server>=<none\|sticky>/],
      [['--affinity', 'stateful=sticky', '--affinity', 'stateful=none'], /server "stateful" given twice/],
      [['--max-sessions', '0'], /"0" is not a positive integer/],
      [['--session-idle-timeout', 'soon'], /"soon" is not an integer from 1 to 2147483647/],
    ];
    for (const [extra, message] of cases) {
      const { code, stderr } = await cliExit([...base, ...extra]);
      assert.equal(code, 1, `${extra.join(' ')} exits 1`);
      assert.match(stderr, message);
    }
    const up = await cliExit(['up', '--affinity', 'nope=sticky', '--nats', nats.url]);
    assert.equal(up.code, 1);
    assert.match(up.stderr, /--affinity names "nope", not in the local mesh/);
    assert.equal(await record('never'), undefined, 'no refused agent ever registered');
  });
});
