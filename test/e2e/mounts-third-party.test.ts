/**
 * Real third-party MCP servers from npm, each mounted by stdio on two agents (`flotilla agent --config
 * servers.json`, the standard mcpServers shape) and called through a real router: the filesystem server
 * on a temp dir and the memory server share one process per agent (`sessions: shared`, the default), the
 * sequential-thinking server, whose thought history lives in its process, gets a process per client
 * session (`sessions: per-session`, sticky). Nothing here is a stand-in: the servers run from their
 * installed bin with node, exactly as they would under a desktop client.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestClient } from '../../packages/router/test/fixtures/mcpClient.js';
import { eventually } from '../harness/eventually.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { grpcStatus, nodeEntry, thirdPartyBin, writeAgentConfig } from '../harness/mounts.js';

let mesh: FlotillaMesh;
let dir: string;
let files: string;
let memoryFile: string;

interface ThoughtResult {
  thoughtNumber: number;
  thoughtHistoryLength: number;
  branches: string[];
}

interface NodesView {
  nodes: Array<{ nodeId: string; servers: Array<{ name: string; toolDigest: string; toolCount: number; connected: boolean }> }>;
}

function text(result: Awaited<ReturnType<TestClient['client']['callTool']>>): string {
  return (result.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join('');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-mounts-'));
  files = join(dir, 'files');
  await mkdir(files);
  memoryFile = join(dir, 'memory.jsonl');
  const servers = {
    filesystem: nodeEntry(thirdPartyBin('@modelcontextprotocol/server-filesystem'), { args: [thirdPartyBin('@modelcontextprotocol/server-filesystem'), files] }),
    memory: nodeEntry(thirdPartyBin('@modelcontextprotocol/server-memory'), { env: { MEMORY_FILE_PATH: memoryFile } }),
    thinking: nodeEntry(thirdPartyBin('@modelcontextprotocol/server-sequential-thinking'), {
      env: { DISABLE_THOUGHT_LOGGING: 'true' },
      flotilla: { sessions: 'per-session', pool: { warm: 1, max: 8 }, affinity: 'sticky' },
    }),
  };
  mesh = await FlotillaMesh.start();
  await mesh.startRouter();
  await Promise.all(['m1', 'm2'].map(async (id) => mesh.startAgent(id, ['--config', await writeAgentConfig(join(dir, `${id}.json`), servers)])));
  await mesh.waitForCatalog({ filesystem_read_text_file: ['m1', 'm2'], memory_read_graph: ['m1', 'm2'], thinking_sequentialthinking: ['m1', 'm2'] }, 90_000);
});

after(async () => {
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('third-party stdio servers mounted on two agents, through the router', () => {
  test('they look like hosted servers: namespaced tools with two replicas, equal digests, per-server gRPC health SERVING', async () => {
    const client = await mesh.connectClient('catalog');
    const names = (await client.client.listTools()).tools.map((t) => t.name);
    for (const tool of ['filesystem_read_text_file', 'filesystem_write_file', 'filesystem_list_directory', 'memory_create_entities', 'memory_search_nodes', 'thinking_sequentialthinking']) {
      assert.ok(names.includes(tool), `${tool} is listed (got ${names.join(', ')})`);
    }
    const view = await mesh.api<NodesView>('/api/v1/nodes');
    for (const server of ['filesystem', 'memory', 'thinking']) {
      const [a, b] = ['m1', 'm2'].map((id) => view.nodes.find((n) => n.nodeId === id)?.servers.find((s) => s.name === server));
      assert.ok(a && b && a.connected && b.connected, `${server} is connected on both nodes`);
      assert.equal(a.toolDigest, b.toolDigest, `${server} has one tool digest on both nodes`);
      assert.ok(a.toolCount > 0);
    }
    for (const id of ['m1', 'm2']) {
      const grpc = String((await mesh.agent(id).ready()).grpc);
      for (const service of ['', 'filesystem', 'memory', 'thinking']) assert.equal(await grpcStatus(grpc, service), 'SERVING', `${id}/${service || '(node)'}`);
    }
  });

  test('filesystem: a file written through the router is read back on both replicas; paths outside its directory are refused by the server', async () => {
    const client = await mesh.connectClient('fs');
    const path = join(files, 'hello.txt');
    const written = await client.client.callTool({ name: 'filesystem_write_file', arguments: { path, content: 'hello from the mesh' } });
    assert.notEqual(written.isError, true, text(written));
    assert.equal(await readFile(path, 'utf8'), 'hello from the mesh');
    for (const id of ['m1', 'm2']) {
      const direct = await mesh.callDirect<{ content: string }>(id, 'filesystem', 'read_text_file', { path });
      assert.equal(direct.content, 'hello from the mesh', `read on ${id}`);
    }
    const listing = await client.client.callTool({ name: 'filesystem_list_directory', arguments: { path: files } });
    assert.match(text(listing), /\[FILE\] hello\.txt/);
    const outside = await client.client.callTool({ name: 'filesystem_read_text_file', arguments: { path: '/etc/hostname' } });
    assert.equal(outside.isError, true);
    assert.match(text(outside), /Access denied|outside allowed directories/i);
  });

  test('memory: entities created through the router are in the graph both replicas read', async () => {
    const client = await mesh.connectClient('memory');
    const created = await client.client.callTool({
      name: 'memory_create_entities',
      arguments: { entities: [{ name: 'Flotilla', entityType: 'project', observations: ['mounts third-party servers'] }] },
    });
    assert.notEqual(created.isError, true, text(created));
    const found = await client.client.callTool({ name: 'memory_search_nodes', arguments: { query: 'Flotilla' } });
    assert.match(text(found), /mounts third-party servers/);
    for (const id of ['m1', 'm2']) {
      const graph = await mesh.callDirect<{ entities: Array<{ name: string }> }>(id, 'memory', 'read_graph');
      assert.deepEqual(graph.entities.map((e) => e.name), ['Flotilla'], `graph on ${id}`);
    }
  });

  test('sequential-thinking: each client session has a process of its own, so thought histories never mix', async () => {
    const [a, b] = await Promise.all([mesh.connectClient('thinker-a'), mesh.connectClient('thinker-b')]);
    const think = async (c: TestClient, n: number, extra: Record<string, unknown> = {}): Promise<ThoughtResult> => {
      const r = await c.client.callTool({ name: 'thinking_sequentialthinking', arguments: { thought: `thought ${n}`, thoughtNumber: n, totalThoughts: 5, nextThoughtNeeded: true, ...extra } });
      assert.notEqual(r.isError, true, text(r));
      return r.structuredContent as unknown as ThoughtResult;
    };
    assert.equal((await think(a, 1)).thoughtHistoryLength, 1);
    assert.equal((await think(a, 2)).thoughtHistoryLength, 2);
    const branched = await think(a, 3, { branchFromThought: 1, branchId: 'alt' });
    assert.equal(branched.thoughtHistoryLength, 3);
    assert.deepEqual(branched.branches, ['alt']);
    // B starts from nothing: none of A's thoughts or branches are in its process.
    const first = await think(b, 1);
    assert.equal(first.thoughtHistoryLength, 1);
    assert.deepEqual(first.branches, []);
    assert.equal((await think(a, 4)).thoughtHistoryLength, 4, "A's history went on in A's own process");
  });

  test('what a stdio server writes to stderr is in its agent log, tagged with the server', async () => {
    await eventually(() => {
      const line = mesh.agent('m1').lines.find((l) => l.msg === 'stdio server stderr' && l.server === 'filesystem');
      assert.ok(line, 'a stderr line of filesystem in the log');
      assert.match(String(line.stderr), /Secure MCP Filesystem Server running on stdio/);
    });
  });
});
