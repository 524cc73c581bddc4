/**
 * A node's death under load: two agents behind the router, `clients` sessions calling `echo` back to back;
 * one agent is killed with SIGKILL. Reports how long after the kill the router still placed calls on it
 * (the last increase of its `flotilla_router_attempts_total`, sampled every 20 ms), how many calls failed
 * (echo is read-only, so none should), and the slowest call around the kill.
 */
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { FlotillaProcess } from '../../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../../harness/NatsServerProcess.js';
import { parseExposition } from '../../harness/prometheusText.js';
import { benchPool, RawMcpSession } from './RawMcpClient.js';
import { waitForTool } from './BenchTargets.js';

/** What the node-death run measured. */
export interface NodeDeathResult {
  clients: number;
  /** From the kill to the last call the router placed on the dead node, ms. */
  lastPlacementAfterKillMs: number;
  callsAroundKill: number;
  failedCalls: number;
  slowestCallMs: number;
}

async function attemptsOn(metricsUrl: string, node: string): Promise<number> {
  const res = await request(metricsUrl, { dispatcher: benchPool });
  return parseExposition(await res.body.text()).sum('flotilla_router_attempts_total', { node });
}

export async function nodeDeath(clients: number, afterKillS = 5): Promise<NodeDeathResult> {
  const nats = await NatsServerProcess.start();
  const agents = ['death-1', 'death-2'].map((id) => FlotillaProcess.spawn(id, ['agent', '--node-id', id, '--server', 'echo=@flotilla/examples/echo', '--nats', nats.url, '--port', '0', '--grpc-port', '0', '--capacity', '256'], {}));
  const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0', '--strategy', 'round-robin'], {});
  try {
    await Promise.all(agents.map((a) => a.ready()));
    const routerUrl = String((await router.ready()).url);
    const metricsUrl = routerUrl.replace(/\/mcp$/, '/metrics');
    const target = { name: 'router', url: routerUrl, tool: 'echo_echo', pid: router.child.pid! };
    await waitForTool(target);
    // Round-robin: a few calls put some on each node, so the victim is in rotation before the kill.
    const probe = await RawMcpSession.open(routerUrl);
    while ((await attemptsOn(metricsUrl, 'death-2')) === 0) await probe.call('echo_echo', { text: 'x' });
    await probe.close();
    const sessions = await Promise.all(Array.from({ length: clients }, () => RawMcpSession.open(routerUrl)));
    let stop = false;
    let calls = 0;
    let failed = 0;
    let slowest = 0;
    const load = Promise.all(
      sessions.map(async (s, i) => {
        for (let n = 0; !stop; n++) {
          const t0 = performance.now();
          try {
            await s.call('echo_echo', { text: `d${i}-${n}` });
          } catch {
            failed++;
          }
          calls++;
          slowest = Math.max(slowest, performance.now() - t0);
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    calls = 0;
    slowest = 0;
    const killedAt = performance.now();
    agents[1]!.signal('SIGKILL');
    let last = await attemptsOn(metricsUrl, 'death-2');
    let lastIncreaseAt = killedAt;
    while (performance.now() - killedAt < afterKillS * 1000) {
      await new Promise((r) => setTimeout(r, 20));
      const now = await attemptsOn(metricsUrl, 'death-2');
      if (now > last) lastIncreaseAt = performance.now();
      last = now;
    }
    stop = true;
    await load;
    await Promise.allSettled(sessions.map((s) => s.close()));
    return { clients, lastPlacementAfterKillMs: lastIncreaseAt - killedAt, callsAroundKill: calls, failedCalls: failed, slowestCallMs: slowest };
  } finally {
    await router.stop();
    await Promise.allSettled(agents.map((a) => a.stop()));
    await nats.dispose();
  }
}
