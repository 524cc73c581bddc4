import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RouterMetrics, type BreakerState, type RouterMetricsSources } from '../src/index.js';
import { NodeSeriesRetention } from '../src/metrics/NodeSeriesRetention.js';

/** One node as the metrics' sources give it; the test changes `toolBreakers` to play the node's guard. */
interface FakeNode {
  nodeId: string;
  toolBreakers?: Record<string, BreakerState>;
}

function metricsOver(nodes: FakeNode[], nodeSeries?: NodeSeriesRetention): RouterMetrics {
  const sources: RouterMetricsSources = {
    nodes: () =>
      nodes.map((n) => ({
        nodeId: n.nodeId,
        running: 0,
        queued: 0,
        breakerState: 'closed' as const,
        ...(n.toolBreakers ? { toolBreakerStates: () => ({ ...n.toolBreakers }) } : {}),
      })),
    catalogTools: () => 0,
    catalogNodes: () => nodes.length,
    clientSessions: () => 0,
    upstreamSessions: () => 0,
    registryUp: () => true,
    natsConnected: () => true,
    lastLoadReportAt: () => undefined,
  };
  return new RouterMetrics(sources, nodeSeries);
}

/** Every sample of a metric as `label=value,...` → value, read from the prom-client registry. */
async function samples(metrics: RouterMetrics, name: string): Promise<Record<string, number>> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    const key = Object.entries(v.labels)
      .map(([k, l]) => `${k}=${String(l)}`)
      .join(',');
    out[key] = v.value;
  }
  return out;
}

describe('RouterMetrics: hedging', () => {
  it('counts second copies per tool, whatever node got them', async () => {
    const metrics = metricsOver([{ nodeId: 'a' }, { nodeId: 'b' }]);
    assert.deepEqual(await samples(metrics, 'flotilla_router_hedges_total'), {});
    metrics.hedged('echo_echo', 'a');
    metrics.hedged('echo_echo', 'b');
    metrics.hedged('docs_search', 'a');
    assert.deepEqual(await samples(metrics, 'flotilla_router_hedges_total'), { 'tool=echo_echo': 2, 'tool=docs_search': 1 });
    const text = (await metrics.exposition()).body;
    assert.match(text, /^# TYPE flotilla_router_hedges_total counter$/m);
    assert.match(text, /^flotilla_router_hedges_total\{tool="echo_echo"\} 2$/m);
  });
});

describe('RouterMetrics: per-tool breakers', () => {
  it('counts transitions by node, server, tool and new state, like the node breaker counter', async () => {
    const metrics = metricsOver([{ nodeId: 'a', toolBreakers: {} }]);
    metrics.toolBreakerTransition('a', 'failing/crash', 'open');
    metrics.toolBreakerTransition('a', 'failing/crash', 'half-open');
    metrics.toolBreakerTransition('a', 'failing/crash', 'open');
    metrics.toolBreakerTransition('a', 'docs/read/page', 'open');
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_transitions_total'), {
      'node=a,server=failing,tool=crash,to=open': 2,
      'node=a,server=failing,tool=crash,to=half_open': 1,
      // Only the first `/` separates the server: tool names may contain one.
      'node=a,server=docs,tool=read/page,to=open': 1,
    });
  });

  it('exports the state of tools whose breaker left closed, read from the node at scrape time, 0/1/2 as the node gauge', async () => {
    const a: FakeNode = { nodeId: 'a', toolBreakers: { 'echo/echo': 'closed', 'failing/crash': 'closed' } };
    const metrics = metricsOver([a, { nodeId: 'b', toolBreakers: { 'echo/echo': 'closed' } }]);
    // Breakers that never left closed (one per tool ever called) have no series.
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), {});

    a.toolBreakers = { 'echo/echo': 'closed', 'failing/crash': 'open' };
    metrics.toolBreakerTransition('a', 'failing/crash', 'open');
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=a,server=failing,tool=crash': 2 });

    // The node's own state wins over the last transition heard.
    a.toolBreakers = { 'echo/echo': 'closed', 'failing/crash': 'half-open' };
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=a,server=failing,tool=crash': 1 });

    // Once troubled, a breaker keeps its series after it closed again, so graphs show it recover.
    a.toolBreakers = { 'echo/echo': 'closed', 'failing/crash': 'closed' };
    metrics.toolBreakerTransition('a', 'failing/crash', 'closed');
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=a,server=failing,tool=crash': 0 });
    assert.deepEqual(await samples(metrics, 'flotilla_router_breaker_state'), { 'node=a': 0, 'node=b': 0 });
  });

  it('drops a node’s tool breaker series when the node leaves, and starts afresh when it comes back', async () => {
    const nodes: FakeNode[] = [
      { nodeId: 'a', toolBreakers: { 'failing/crash': 'open' } },
      { nodeId: 'b', toolBreakers: { 'failing/crash': 'open' } },
    ];
    const metrics = metricsOver(nodes);
    metrics.toolBreakerTransition('a', 'failing/crash', 'open');
    metrics.toolBreakerTransition('b', 'failing/crash', 'open');
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=a,server=failing,tool=crash': 2, 'node=b,server=failing,tool=crash': 2 });

    nodes.splice(0, 1); // a leaves
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=b,server=failing,tool=crash': 2 });
    // a comes back under the same id with fresh breakers: nothing troubled there any more.
    nodes.push({ nodeId: 'a', toolBreakers: { 'failing/crash': 'closed' } });
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=b,server=failing,tool=crash': 2 });

    // b restarts between two scrapes: its new guard has no breaker for the tool yet, so no series.
    nodes[0] = { nodeId: 'b', toolBreakers: {} };
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), {});
  });

  it('falls back to the last transition heard when a node view cannot list its tool breakers', async () => {
    const metrics = metricsOver([{ nodeId: 'a' }]);
    metrics.toolBreakerTransition('a', 'failing/crash', 'open');
    metrics.toolBreakerTransition('a', 'failing/crash', 'half-open');
    assert.deepEqual(await samples(metrics, 'flotilla_router_tool_breaker_state'), { 'node=a,server=failing,tool=crash': 1 });
    const text = (await metrics.exposition()).body;
    assert.match(text, /^# TYPE flotilla_router_tool_breaker_state gauge$/m);
    assert.match(text, /^flotilla_router_tool_breaker_state\{node="a",server="failing",tool="crash"\} 1$/m);
  });
});

describe('RouterMetrics: series of nodes that left', () => {
  it('keep the counters of a node that left for the retention, then drop them; other nodes keep theirs', async () => {
    const nodes: FakeNode[] = [{ nodeId: 'a' }, { nodeId: 'b' }];
    let now = 1_000_000;
    const metrics = metricsOver(nodes, new NodeSeriesRetention(60_000, () => now));
    for (const nodeId of ['a', 'b']) {
      metrics.attempt('echo_echo', nodeId, 'ok');
      metrics.finished('echo_echo', nodeId, 'ok', 0.01);
      metrics.breakerTransition(nodeId, 'open');
      metrics.toolBreakerTransition(nodeId, 'echo/echo', 'open');
    }
    metrics.finished('echo_echo', undefined, 'no_replica', 0.01);
    const nodesIn = async (name: string): Promise<string[]> =>
      [...new Set(Object.keys(await samples(metrics, name)).map((k) => /node=([^,]+)/.exec(k)?.[1] ?? '?'))].sort();
    const counters = ['flotilla_router_attempts_total', 'flotilla_router_calls_total', 'flotilla_router_breaker_transitions_total', 'flotilla_router_tool_breaker_transitions_total'];

    nodes.splice(0, 1); // a leaves
    await metrics.exposition();
    now += 59_000;
    await metrics.exposition();
    assert.deepEqual(await nodesIn('flotilla_router_attempts_total'), ['a', 'b'], 'kept during the retention');
    now += 2_000;
    await metrics.exposition();
    assert.deepEqual(await nodesIn('flotilla_router_attempts_total'), ['b']);
    assert.deepEqual(await nodesIn('flotilla_router_calls_total'), ['b', 'none'], 'calls no node answered are kept');
    for (const name of counters.slice(2)) assert.deepEqual(await nodesIn(name), ['b'], name);

    // A node that comes back before its retention ran out keeps its series.
    metrics.attempt('echo_echo', 'a', 'ok');
    nodes.push({ nodeId: 'c' });
    await metrics.exposition();
    nodes.push({ nodeId: 'a' });
    now += 120_000;
    await metrics.exposition();
    assert.deepEqual(await nodesIn('flotilla_router_attempts_total'), ['a', 'b']);
    assert.equal((await samples(metrics, 'flotilla_router_attempts_total'))['tool=echo_echo,node=a,result=ok'], 1, 'counting from 0 again after the drop');
  });
});
