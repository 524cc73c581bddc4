/**
 * Live mounts: editing the agents' config files (`flotilla agent --config`) while calls run through a
 * real router. Servers are added, removed and changed without a restart; the registry record and the
 * router's catalog follow and clients get `tools/list_changed`; calls to the mount that stays are never
 * lost; a file with errors changes nothing and names the field; a mounted server's own `list_changed`
 * reaches clients.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CallLoad, summarizeOutcomes, type CallShape } from '../harness/CallLoad.js';
import { ChaosMesh, type ToolsView } from '../harness/ChaosMesh.js';
import { eventually } from '../harness/eventually.js';
import type { LogLine } from '../harness/FlotillaProcess.js';
import { WORKER_BIN, nodeEntry, processAlive, writeAgentConfig } from '../harness/mounts.js';

let mesh: ChaosMesh;
let dir: string;
let load: CallLoad | undefined;
const NODES = ['l1', 'l2'] as const;
const files: Record<string, string> = {};

const worker = nodeEntry(WORKER_BIN);
const shapes: CallShape[] = [
  { tool: 'worker_work', kind: 'idempotent', args: () => ({ steps: 4, stepMs: 25 }) },
  { tool: 'worker_whoami', kind: 'read-only', args: () => ({}) },
];

async function writeAll(servers: Record<string, unknown>): Promise<void> {
  await Promise.all(NODES.map((id) => writeAgentConfig(files[id]!, servers)));
}

function agentLines(nodeId: string, match: (l: LogLine) => boolean): LogLine[] {
  return mesh.agent(nodeId).lines.filter(match);
}

async function toolNames(): Promise<string[]> {
  return (await mesh.api<ToolsView>('/api/v1/tools')).tools.map((t) => t.name);
}

/**
 * Reads the router's catalog over and over (about every 10 ms) until stopped, and records every look at
 * which one of `tools` is missing, is not on every node, or has no node that takes its calls. A mount
 * that stays must be listed on every node all along: relisting a node's server (after the agent replaced
 * it) must not take it out first, or a call arriving meanwhile is answered "Unknown tool".
 */
function watchCatalog(tools: string[]): { stop: () => Promise<{ looks: number; gaps: string[] }> } {
  const gaps: string[] = [];
  let looks = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const view = await mesh.api<ToolsView>('/api/v1/tools').catch(() => undefined);
      if (view) {
        looks++;
        for (const name of tools) {
          const tool = view.tools.find((t) => t.name === name);
          const on = tool?.replicas.map((r) => r.nodeId).sort() ?? [];
          if (on.join() !== [...NODES].sort().join()) gaps.push(`${new Date().toISOString()} ${name} on [${on.join(', ')}]`);
          else if (!tool!.replicas.some((r) => r.available)) gaps.push(`${new Date().toISOString()} ${name}: no node takes its calls`);
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { looks, gaps };
    },
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-mount-reload-'));
  for (const id of NODES) files[id] = join(dir, `${id}.json`);
  await writeAll({ worker, doomed: worker });
  mesh = await ChaosMesh.start();
  await mesh.startRouter();
  await Promise.all(NODES.map((id) => mesh.startAgent(id, ['--config', files[id]!], [])));
  await mesh.waitForCatalog({ worker_work: NODES, doomed_whoami: NODES });
});

after(async () => {
  await load?.stop();
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('live changes of the config file', () => {
  test('add, remove and change mounts under load: no call to the mount that stays is lost; records, catalog and clients follow', async () => {
    const watcher = await mesh.connectClient('watcher');
    const doomedPids = NODES.map((id) => Number(agentLines(id, (l) => l.server === 'doomed' && l.msg === 'stdio server process answered initialize').at(-1)?.pid));
    load = new CallLoad(mesh.routerUrl, { workers: 6, shapes, clientTimeoutMs: 30_000 });
    await load.start();
    await eventually(() => assert.ok(load!.count() >= 20, `calls ${load!.count()}: ${summarizeOutcomes(load!.outcomes)}; in flight ${load!.describeInFlight()}`), 60_000);
    const listChangedBefore = watcher.listChanged.tools;
    const catalog = watchCatalog(['worker_work', 'worker_whoami']);

    // Remove `doomed`, add `added`.
    await writeAll({ worker, added: worker });
    await mesh.waitForReplicas('added_whoami', NODES, 60_000);
    await eventually(async () => assert.ok(!(await toolNames()).some((n) => n.startsWith('doomed_')), 'doomed tools gone'), 30_000);
    await eventually(() => assert.ok(watcher.listChanged.tools > listChangedBefore, 'the client was told its tool list changed'), 20_000);
    for (const id of NODES) {
      const changed = agentLines(id, (l) => l.msg === 'servers changed').at(-1);
      assert.deepEqual([changed?.added, changed?.removed], [['added'], ['doomed']], `${id} says what changed`);
      await eventually(() => assert.equal(agentLines(id, (l) => l.server === 'doomed' && l.msg === 'server retired').length, 1, `doomed retired on ${id}`), 30_000);
    }
    for (const pid of doomedPids) await eventually(() => assert.equal(processAlive(pid), false, `doomed process ${pid} stopped`), 15_000);
    const view = await mesh.api<{ nodes: Array<{ nodeId: string; servers: Array<{ name: string }> }> }>('/api/v1/nodes');
    for (const id of NODES) assert.deepEqual(view.nodes.find((n) => n.nodeId === id)?.servers.map((s) => s.name).sort(), ['added', 'worker'], `record of ${id}`);

    // Change `worker` itself (a new environment: a new process, the old one retired once its calls end).
    const before = load.count();
    await writeAll({ worker: { ...worker, env: { WORKER_GENERATION: '2' } }, added: worker });
    for (const id of NODES) await eventually(() => assert.deepEqual(agentLines(id, (l) => l.msg === 'servers changed').at(-1)?.changed, ['worker']), 30_000);
    for (const id of NODES) await eventually(() => assert.equal(agentLines(id, (l) => l.server === 'worker' && l.msg === 'server retired').length, 1, `old worker retired on ${id}`), 60_000);
    await eventually(() => assert.ok(load!.count() >= before + 30, `calls ${load!.count()}, in flight ${load!.describeInFlight()}`), 60_000);

    const outcomes = await load.stop();
    const { looks, gaps } = await catalog.stop();
    const summary = summarizeOutcomes(outcomes);
    assert.deepEqual(gaps, [], `the mount that stays was out of the catalog, or off a node, at ${gaps.length} of ${looks} looks`);
    assert.ok(looks >= 20, `the catalog was read ${looks} times`);
    assert.equal(outcomes.filter((o) => o.hung).length, 0, `hung: ${summary}`);
    assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => `${o.tool}: ${o.message}`), [], `lost calls to worker: ${summary}`);
    process.stderr.write(`# live mounts: ${outcomes.length} calls to worker across add/remove/change; ${summary}\n`);
  });

  test('a config file with errors changes nothing, names each wrong field, and the running mounts keep serving', async () => {
    const startsBefore = agentLines('l1', (l) => l.msg === 'stdio server process started').length;
    await writeFile(files.l1!, JSON.stringify({ capacity: 0, mcpServers: { worker: { command: process.execPath, args: [WORKER_BIN, 7] }, other: { url: 'http://127.0.0.1:1/mcp', headers: { Authorization: 'Bearer ${NO_SUCH_TOKEN_VAR}' } } } }));
    const error = await eventually(() => {
      const line = agentLines('l1', (l) => typeof l.msg === 'string' && l.msg.startsWith('config file has errors')).at(-1);
      assert.ok(line, 'the error is logged');
      return line;
    }, 20_000);
    assert.deepEqual(error.problems, [
      'capacity: Too small: expected number to be >0',
      'mcpServers.worker.args[1]: Invalid input: expected string, received number',
      'mcpServers.other.headers.Authorization: environment variable NO_SUCH_TOKEN_VAR is not set',
    ]);
    const client = await mesh.connectClient('after-bad-file');
    for (let i = 0; i < 6; i++) assert.notEqual((await client.client.callTool({ name: 'worker_whoami' })).isError, true);
    await mesh.waitForReplicas('worker_whoami', NODES);
    assert.equal(agentLines('l1', (l) => l.msg === 'stdio server process started').length, startsBefore, 'no process was started or replaced');

    // Fixed, with an option that only a restart applies: servers as they are, and a warning about the option.
    await writeAgentConfig(files.l1!, { worker: { ...worker, env: { WORKER_GENERATION: '2' } }, added: worker }, { capacity: 4 });
    await eventually(() => {
      const applied = agentLines('l1', (l) => l.msg === 'config file applied').at(-1);
      assert.ok(applied && Date.parse(String(applied.time)) >= Date.parse(String(error.time)), 'applied after the fix');
      assert.deepEqual([applied.added, applied.removed, applied.changed], [[], [], []]);
    }, 20_000);
    const warning = agentLines('l1', (l) => l.msg === 'config file changes options that take effect when the agent restarts').at(-1);
    assert.deepEqual(warning?.options, ['capacity']);
  });

  test('a changed mount whose new process does not answer is stopped, and the previous one keeps serving', async () => {
    const silent = { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], flotilla: { startupTimeoutMs: 1500 } };
    const startedBefore = agentLines('l1', (l) => l.server === 'added' && l.msg === 'stdio server process started').length;
    await writeAgentConfig(files.l1!, { worker: { ...worker, env: { WORKER_GENERATION: '2' } }, added: silent }, { capacity: 4 });
    const refused = await eventually(() => {
      const line = agentLines('l1', (l) => l.msg === 'server could not be started; the previous state of it stays' && l.server === 'added').at(-1);
      assert.ok(line, `the agent says the change did not take; it said: ${JSON.stringify(agentLines('l1', () => true).slice(-6).map((l) => [l.msg, l.server, l.error ?? l.problems]))}`);
      return line;
    }, 30_000);
    assert.match(String(refused.error), /did not answer initialize\/tools\/list; the previous one keeps serving/);
    const started = agentLines('l1', (l) => l.server === 'added' && l.msg === 'stdio server process started').slice(startedBefore);
    assert.equal(started.length, 1, 'the new process was started once');
    await eventually(() => assert.equal(processAlive(Number(started[0]!.pid)), false, 'the silent process was stopped'), 15_000);
    // The previous `added` still serves on l1, and stays in the catalog on both nodes.
    await mesh.waitForReplicas('added_whoami', NODES);
    assert.ok(await mesh.callDirect<Record<string, unknown>>('l1', 'added', 'whoami'), "l1's previous added answers");
    const client = await mesh.connectClient('after-silent-change');
    for (let i = 0; i < 4; i++) assert.notEqual((await client.client.callTool({ name: 'added_whoami' })).isError, true);
    const view = await mesh.api<{ nodes: Array<{ nodeId: string; servers: Array<{ name: string }> }> }>('/api/v1/nodes');
    assert.ok(view.nodes.find((n) => n.nodeId === 'l1')?.servers.some((s) => s.name === 'added'), 'l1 still announces added');
    await writeAgentConfig(files.l1!, { worker: { ...worker, env: { WORKER_GENERATION: '2' } }, added: worker }, { capacity: 4 });
  });

  test("a mounted server's own list_changed reaches the router's clients", async () => {
    const watcher = await mesh.connectClient('list-changed');
    const seen = watcher.listChanged.tools;
    const grown = await watcher.client.callTool({ name: 'worker_grow', arguments: { name: 'zeta' } });
    assert.notEqual(grown.isError, true);
    await eventually(() => assert.ok(watcher.listChanged.tools > seen, 'tools/list_changed reached the client'), 20_000);
    await eventually(async () => assert.ok((await watcher.client.listTools()).tools.some((t) => t.name === 'worker_extra_zeta')), 20_000);
    const extra = await watcher.client.callTool({ name: 'worker_extra_zeta' });
    assert.deepEqual((extra.structuredContent as { extra: string }).extra, 'zeta');
  });
});
