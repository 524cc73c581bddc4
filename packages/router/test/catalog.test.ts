import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namespacedName } from '@flotilla/protocol';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { Catalog, type CatalogChange, type ServerListing } from '../src/index.js';

const tool = (name: string, extra: Partial<Tool> = {}): Tool => ({ name, inputSchema: { type: 'object' }, ...extra });
const listing = (parts: Partial<ServerListing>): ServerListing => ({ tools: [], resources: [], resourceTemplates: [], prompts: [], ...parts });

function recorder(catalog: Catalog): CatalogChange[] {
  const changes: CatalogChange[] = [];
  catalog.onChange((c) => changes.push(c));
  return changes;
}

describe('Catalog', () => {
  it('merges replicas of one server into one entry per tool, namespaced by server', () => {
    const catalog = new Catalog();
    catalog.setListing('echo', 'node-b', listing({ tools: [tool('say'), tool('whoami')] }));
    catalog.setListing('echo', 'node-a', listing({ tools: [tool('say'), tool('whoami')] }));
    catalog.setListing('slow', 'node-a', listing({ tools: [tool('work')] }));

    assert.deepEqual(catalog.listTools().map((t) => t.name), ['echo_say', 'echo_whoami', 'slow_work']);
    const say = catalog.tool('echo_say')!;
    assert.equal(say.server, 'echo');
    assert.equal(say.upstreamName, 'say');
    assert.equal(say.definition.name, 'echo_say');
    assert.deepEqual(say.replicas, ['node-a', 'node-b']);
    assert.deepEqual(catalog.tool('slow_work')!.replicas, ['node-a']);
    assert.deepEqual(catalog.listServers(), [
      { name: 'echo', replicas: ['node-a', 'node-b'] },
      { name: 'slow', replicas: ['node-a'] },
    ]);
  });

  it('uses the shared namespacing rule, including shortening of long names', () => {
    const catalog = new Catalog();
    const long = 'a'.repeat(80);
    catalog.setListing('srv', 'n1', listing({ tools: [tool(long), tool('with space')] }));
    const names = catalog.listTools().map((t) => t.name).sort();
    assert.deepEqual(names, [namespacedName('srv', long), namespacedName('srv', 'with space')].sort());
    for (const n of names) assert.ok(n.length <= 64, n);
    assert.equal(catalog.tool(namespacedName('srv', long))!.upstreamName, long);
  });

  it('reports a tools change when a tool appears or disappears, and only a replicas change when a second replica comes or goes', () => {
    const catalog = new Catalog();
    const changes = recorder(catalog);
    catalog.setListing('echo', 'n1', listing({ tools: [tool('say')] }));
    assert.deepEqual(changes.pop(), { tools: true, resources: false, prompts: false, replicas: true });

    catalog.setListing('echo', 'n2', listing({ tools: [tool('say')] }));
    assert.deepEqual(changes.pop(), { tools: false, resources: false, prompts: false, replicas: true });

    catalog.removeNode('n1');
    assert.deepEqual(changes.pop(), { tools: false, resources: false, prompts: false, replicas: true });
    assert.deepEqual(catalog.tool('echo_say')!.replicas, ['n2']);

    catalog.removeNode('n2');
    assert.deepEqual(changes.pop(), { tools: true, resources: false, prompts: false, replicas: true });
    assert.equal(catalog.tool('echo_say'), undefined);
    assert.deepEqual(catalog.listServers(), []);
  });

  it('emits nothing when a listing is refreshed unchanged or an unknown node is removed', () => {
    const catalog = new Catalog();
    catalog.setListing('echo', 'n1', listing({ tools: [tool('say')] }));
    const changes = recorder(catalog);
    catalog.setListing('echo', 'n1', listing({ tools: [tool('say')] }));
    catalog.removeNode('nobody');
    catalog.removeListing('echo', 'nobody');
    assert.deepEqual(changes, []);
  });

  it('reports a tools change when a replica changes a tool definition', () => {
    const catalog = new Catalog();
    catalog.setListing('echo', 'n1', listing({ tools: [tool('say', { description: 'v1' })] }));
    const changes = recorder(catalog);
    catalog.setListing('echo', 'n1', listing({ tools: [tool('say', { description: 'v2' })] }));
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.tools, true);
    assert.equal(catalog.tool('echo_say')!.definition.description, 'v2');
  });

  it('routes a tool only to the replicas that have it when replicas disagree', () => {
    const catalog = new Catalog();
    catalog.setListing('echo', 'n1', listing({ tools: [tool('say')] }));
    catalog.setListing('echo', 'n2', listing({ tools: [tool('say'), tool('shout', { description: 'new in v2' })] }));
    assert.deepEqual(catalog.tool('echo_say')!.replicas, ['n1', 'n2']);
    assert.deepEqual(catalog.tool('echo_shout')!.replicas, ['n2']);
  });

  it('marks tools annotated read-only or idempotent as retryable after acceptance', () => {
    const catalog = new Catalog();
    catalog.setListing('s', 'n1', listing({
      tools: [
        tool('ro', { annotations: { readOnlyHint: true } }),
        tool('idem', { annotations: { idempotentHint: true } }),
        tool('plain'),
        tool('destructive', { annotations: { readOnlyHint: false, destructiveHint: true } }),
      ],
    }));
    assert.equal(catalog.tool('s_ro')!.retryableAfterAcceptance, true);
    assert.equal(catalog.tool('s_idem')!.retryableAfterAcceptance, true);
    assert.equal(catalog.tool('s_plain')!.retryableAfterAcceptance, false);
    assert.equal(catalog.tool('s_destructive')!.retryableAfterAcceptance, false);
  });

  it('namespaces prompts like tools and keeps resource URIs, routing them by exact URI or template', () => {
    const catalog = new Catalog();
    catalog.setListing('docs', 'n1', listing({
      resources: [{ uri: 'docs://readme', name: 'readme' }],
      resourceTemplates: [{ uriTemplate: 'docs://pages/{name}', name: 'page' }],
      prompts: [{ name: 'summarize' }],
    }));
    catalog.setListing('docs', 'n2', listing({
      resources: [{ uri: 'docs://readme', name: 'readme' }],
      resourceTemplates: [{ uriTemplate: 'docs://pages/{name}', name: 'page' }],
      prompts: [{ name: 'summarize' }],
    }));
    catalog.setListing('files', 'n3', listing({ resources: [{ uri: 'file:///etc/motd', name: 'motd' }] }));

    assert.deepEqual(catalog.listPrompts().map((p) => [p.name, p.upstreamName, p.replicas]), [['docs_summarize', 'summarize', ['n1', 'n2']]]);
    assert.deepEqual(catalog.listResources().map((r) => r.uri), ['docs://readme', 'file:///etc/motd']);
    assert.deepEqual(catalog.routeResource('docs://readme'), { server: 'docs', replicas: ['n1', 'n2'] });
    assert.deepEqual(catalog.routeResource('docs://pages/intro'), { server: 'docs', replicas: ['n1', 'n2'] });
    assert.deepEqual(catalog.routeResource('file:///etc/motd'), { server: 'files', replicas: ['n3'] });
    assert.equal(catalog.routeResource('nope://x'), undefined);
    assert.equal(catalog.resourceTemplate('docs://pages/{name}')!.server, 'docs');
  });

  it('reports resource and prompt changes separately from tools', () => {
    const catalog = new Catalog();
    const changes = recorder(catalog);
    catalog.setListing('docs', 'n1', listing({ resources: [{ uri: 'docs://a', name: 'a' }] }));
    assert.deepEqual(changes.pop(), { tools: false, resources: true, prompts: false, replicas: true });
    catalog.setListing('docs', 'n1', listing({ resources: [{ uri: 'docs://a', name: 'a' }], prompts: [{ name: 'p' }] }));
    assert.deepEqual(changes.pop(), { tools: false, resources: false, prompts: true, replicas: false });
  });

  it('gives a URI offered by two different servers to the first server by name', () => {
    const catalog = new Catalog();
    catalog.setListing('zeta', 'n1', listing({ resources: [{ uri: 'x://shared', name: 'z' }] }));
    catalog.setListing('alpha', 'n2', listing({ resources: [{ uri: 'x://shared', name: 'a' }] }));
    assert.deepEqual(catalog.routeResource('x://shared'), { server: 'alpha', replicas: ['n2'] });
    assert.equal(catalog.listResources().length, 1);
  });
});
