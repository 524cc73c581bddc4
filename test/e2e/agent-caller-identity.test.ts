/**
 * Agents record who called (issue 11): a `flotilla router` with a front door (an API key made with
 * `flotilla keys create`) calls through a `flotilla agent` that requires mesh tokens; the agent's call
 * log lines and its exported call span (OTLP, to a receiver in the test) carry the client identity from
 * the token (`principal` / `enduser.id`, as on the router) and the router replica that sent the call.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { eventually } from '../harness/eventually.js';
import { CLI_BIN, type FlotillaProcess } from '../harness/FlotillaProcess.js';
import { OtlpTraceReceiver } from '../harness/OtlpTraceReceiver.js';
import { SecureMesh } from '../harness/SecureMesh.js';

const run = promisify(execFile);

let mesh: SecureMesh;
let receiver: OtlpTraceReceiver;
let agent: FlotillaProcess;
let router: FlotillaProcess;
let routerUrl: string;
let key: string;
let keyId: string;

before(async () => {
  mesh = await SecureMesh.start({ nodeIds: ['who-1'], enforceNats: false });
  receiver = await OtlpTraceReceiver.start();
  const keysFile = join(mesh.dir, 'keys.json');
  key = (await run(process.execPath, [CLI_BIN, 'keys', 'create', '--file', keysFile, '--subject', 'ci-bot'])).stdout.trim();
  keyId = key.split('_')[1]!;
  ({ process: router, url: routerUrl } = await mesh.startRouter(['--api-keys-file', keysFile], 'router'));
  // `call started` / `call finished` are debug lines.
  ({ process: agent } = await mesh.startAgent('who-1', ['echo=@flotilla/examples/echo'], [], { ...receiver.exportEnv(100), LOG_LEVEL: 'debug' }));
});

after(async () => {
  await mesh?.stop();
  await receiver?.stop();
});

test("the agent's call logs and span name the client identity and the router replica that sent the call", async () => {
  const replica = String(router.lines.find((l) => l.msg === 'router ready')?.replica);
  assert.match(replica, /^[0-9a-f]{8}$/);
  const client = new Client({ name: 'caller-identity-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(routerUrl), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  try {
    await eventually(async () => assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo_echo')), 60_000, 250);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const result = await client.callTool({ name: 'echo_echo', arguments: { text: 'who' }, _meta: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'who' }]);

    const principal = `key:${keyId}`;
    const lines = await eventually(() => {
      const found = agent.lines.filter((l) => l.tool === 'echo' && (l.msg === 'call started' || l.msg === 'call finished'));
      assert.deepEqual(found.map((l) => l.msg), ['call started', 'call finished']);
      return found;
    });
    for (const line of lines) {
      assert.equal(line.principal, principal, `${String(line.msg)} names the client`);
      assert.equal(line.router, replica, `${String(line.msg)} names the router replica`);
      assert.equal(line.routerKey, mesh.keys.mesh.publicKey, `${String(line.msg)} names the router's mesh key`);
    }
    const span = await eventually(() => {
      const spans = receiver.spans.filter((s) => s.name === 'tools/call echo' && s.resource['service.name'] === 'flotilla-agent');
      assert.equal(spans.length, 1);
      return spans[0]!;
    }, 20_000);
    assert.equal(span.attributes['enduser.id'], principal);
    assert.equal(span.attributes['flotilla.router.replica'], replica);
    assert.equal(span.attributes['flotilla.router.key'], mesh.keys.mesh.publicKey);
  } finally {
    await client.close();
  }
});
