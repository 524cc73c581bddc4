/**
 * Benchmark: what a client session costs through the router versus straight to the agent, in one run:
 *   - session open (initialize + initialized) and the first call on a new session (through the router
 *     this also opens the client's own upstream session), then a warm call on the same session;
 *   - memory per idle client session (each made one call, so its upstream session exists), on the router
 *     and on the agent, from their own /metrics (resident set and V8 heap);
 *   - a session taken up by another router replica (same session key): its first call there (the replica
 *     opens the sealed id, reads the session's record and uses the upstream session the first replica
 *     opened) and its calls after that, against calls on the replica that opened it.
 * Usage: npm run bench:sessions [-- --sessions 200 --idle 1000]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { FlotillaProcess } from '../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../harness/NatsServerProcess.js';
import { parseExposition } from '../harness/prometheusText.js';
import { ms, summarize } from './stats.js';
import { printTable } from './table.js';

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '200' }, idle: { type: 'string', default: '1000' } } });
const sessions = Number(values.sessions);
const idle = Number(values.idle);
const PROTOCOL = '2025-11-25';
const pool = new Agent({ connections: 64 });

/** One JSON-RPC exchange over plain HTTP (what any client does), returning the session id header if any. */
async function rpc(url: string, body: unknown, sessionId?: string): Promise<{ sessionId: string | undefined; text: string }> {
  const res = await request(url, {
    method: 'POST',
    dispatcher: pool,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': PROTOCOL,
      ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  const header = res.headers['mcp-session-id'];
  return { sessionId: Array.isArray(header) ? header[0] : header, text };
}

async function openSession(url: string): Promise<string> {
  const init = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '0' } } });
  if (!init.sessionId) throw new Error('no session id');
  await rpc(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.sessionId);
  return init.sessionId;
}

async function call(url: string, sessionId: string, tool: string, id: number): Promise<void> {
  const r = await rpc(url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { text: `s${id}` } } }, sessionId);
  if (!r.text.includes('"result"')) throw new Error(`call failed: ${r.text.slice(0, 200)}`);
}

async function closeSession(url: string, sessionId: string): Promise<void> {
  const res = await request(url, { method: 'DELETE', dispatcher: pool, headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL } });
  await res.body.dump();
}

interface SessionTimes {
  open: number[];
  first: number[];
  warm: number[];
}

/** Opens `n` sessions one after another; times open, the first call and a second (warm) call of each. */
async function sessionSeries(url: string, tool: string, n: number, into: SessionTimes): Promise<void> {
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    const sid = await openSession(url);
    into.open.push(performance.now() - t);
    t = performance.now();
    await call(url, sid, tool, 2);
    into.first.push(performance.now() - t);
    t = performance.now();
    await call(url, sid, tool, 3);
    into.warm.push(performance.now() - t);
    await closeSession(url, sid);
  }
}

async function memory(metricsUrl: string, prefix: string): Promise<{ rss: number; heap: number }> {
  const res = await request(metricsUrl, { dispatcher: pool });
  const m = parseExposition(await res.body.text());
  return { rss: m.value(`${prefix}_process_resident_memory_bytes`) ?? NaN, heap: m.value(`${prefix}_nodejs_heap_size_used_bytes`) ?? NaN };
}

const nats = await NatsServerProcess.start();
const agent = FlotillaProcess.spawn('agent', ['agent', '--node-id', 'bench-1', '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--max-sessions', String(idle * 2 + 100)], {});
const sessionKey = randomBytes(32).toString('base64');
const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0'], { FLOTILLA_SESSION_KEY: sessionKey });
const second = FlotillaProcess.spawn('router-2', ['router', '--nats', nats.url, '--port', '0'], { FLOTILLA_SESSION_KEY: sessionKey });
try {
  const agentBase = String((await agent.ready()).url);
  const routerUrl = String((await router.ready()).url);
  const secondUrl = String((await second.ready()).url);
  const agentUrl = `${agentBase}/mcp/echo`;
  for (let i = 0; ; i++) {
    const sid = await openSession(routerUrl);
    const r = await rpc(routerUrl, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, sid);
    await closeSession(routerUrl, sid);
    if (r.text.includes('echo_echo')) break;
    if (i > 200) throw new Error('router never listed echo_echo');
    await new Promise((res) => setTimeout(res, 100));
  }

  // Interleaved in halves so machine noise hits both alike.
  const direct: SessionTimes = { open: [], first: [], warm: [] };
  const routed: SessionTimes = { open: [], first: [], warm: [] };
  await sessionSeries(agentUrl, 'echo', 20, { open: [], first: [], warm: [] }); // warm-up
  await sessionSeries(routerUrl, 'echo_echo', 20, { open: [], first: [], warm: [] });
  for (const n of [Math.floor(sessions / 2), sessions - Math.floor(sessions / 2)]) {
    await sessionSeries(agentUrl, 'echo', n, direct);
    await sessionSeries(routerUrl, 'echo_echo', n, routed);
  }
  const rows: string[][] = [['series', 'sessions', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms']];
  const results: Record<string, ReturnType<typeof summarize>> = {};
  for (const [label, key] of [['session open', 'open'], ['first call on a new session', 'first'], ['warm call', 'warm']] as const) {
    const d = summarize(direct[key]);
    const r = summarize(routed[key]);
    results[`direct_${key}`] = d;
    results[`router_${key}`] = r;
    rows.push([`${label}: direct`, String(d.n), ms(d.p50), ms(d.p90), ms(d.p99), ms(d.mean)]);
    rows.push([`${label}: router`, String(r.n), ms(r.p50), ms(r.p90), ms(r.p99), ms(r.mean)]);
  }
  printTable(`Client sessions, ${sessions} each way (plain HTTP client, one session at a time)`, rows);

  // A session taken up by another replica: opened and used once on the first router, then used on the second.
  const takeUp: SessionTimes = { open: [], first: [], warm: [] };
  const stay: number[] = [];
  for (let i = 0; i < Math.max(20, Math.floor(sessions / 2)); i++) {
    const sid = await openSession(routerUrl);
    await call(routerUrl, sid, 'echo_echo', 2);
    let t = performance.now();
    await call(routerUrl, sid, 'echo_echo', 3);
    stay.push(performance.now() - t);
    t = performance.now();
    await call(secondUrl, sid, 'echo_echo', 4);
    takeUp.first.push(performance.now() - t);
    t = performance.now();
    await call(secondUrl, sid, 'echo_echo', 5);
    takeUp.warm.push(performance.now() - t);
    await closeSession(secondUrl, sid);
  }
  const st = summarize(stay);
  const tf = summarize(takeUp.first);
  const tw = summarize(takeUp.warm);
  results['replica_same'] = st;
  results['replica_takeup_first'] = tf;
  results['replica_takeup_warm'] = tw;
  printTable(`A session taken up by another router replica (${st.n} sessions)`, [
    ['series', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
    ['warm call on the replica that opened it', ms(st.p50), ms(st.p90), ms(st.p99), ms(st.mean)],
    ['first call on another replica', ms(tf.p50), ms(tf.p90), ms(tf.p99), ms(tf.mean)],
    ['next call there', ms(tw.p50), ms(tw.p90), ms(tw.p99), ms(tw.mean)],
  ]);

  // Memory per idle client session: open `idle` sessions through the router, each making one call (so its
  // upstream session to the agent exists), and leave them open.
  const routerMetrics = routerUrl.replace(/\/mcp$/, '/metrics');
  const agentMetrics = `${agentBase}/metrics`;
  await new Promise((res) => setTimeout(res, 1000));
  const before = { router: await memory(routerMetrics, 'flotilla_router'), agent: await memory(agentMetrics, 'flotilla_agent') };
  const open: string[] = [];
  for (let i = 0; i < idle; i++) {
    const sid = await openSession(routerUrl);
    await call(routerUrl, sid, 'echo_echo', 2);
    open.push(sid);
  }
  await new Promise((res) => setTimeout(res, 2000));
  const afterOpen = { router: await memory(routerMetrics, 'flotilla_router'), agent: await memory(agentMetrics, 'flotilla_agent') };
  const per = (a: number, b: number): string => `${((b - a) / idle / 1024).toFixed(1)} KiB`;
  printTable(`Memory per idle client session (${idle} sessions, each after one call; RSS and V8 heap deltas)`, [
    ['process', 'RSS per session', 'heap per session'],
    ['router', per(before.router.rss, afterOpen.router.rss), per(before.router.heap, afterOpen.router.heap)],
    ['agent (its upstream session)', per(before.agent.rss, afterOpen.agent.rss), per(before.agent.heap, afterOpen.agent.heap)],
  ]);
  for (const sid of open) await closeSession(routerUrl, sid);
  process.stdout.write(
    `${JSON.stringify({ sessions: results, idle, memoryBytes: { before, afterOpen }, perSessionBytes: { routerRss: (afterOpen.router.rss - before.router.rss) / idle, routerHeap: (afterOpen.router.heap - before.router.heap) / idle, agentRss: (afterOpen.agent.rss - before.agent.rss) / idle, agentHeap: (afterOpen.agent.heap - before.agent.heap) / idle } })}\n`,
  );
} finally {
  await router.stop();
  await second.stop();
  await agent.stop();
  await nats.dispose();
  await pool.close();
}
