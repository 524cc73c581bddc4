/**
 * Catalog scale: a router facing `agents` real agents with 50 distinct tools each (one simulated fleet
 * process). Reports how long after the fleet registered the router's catalog held every tool, how long a
 * client's full `tools/list` takes (all pages), and the router's memory before and after.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { FlotillaProcess } from '../../harness/FlotillaProcess.js';
import { NatsServerProcess } from '../../harness/NatsServerProcess.js';
import { summarize, type LatencySummary } from '../stats.js';
import { TOOLS_PER_SERVER } from './fiftyTools.js';
import { processMemory, type ProcessMemory } from './processMemory.js';
import { RawMcpSession } from './RawMcpClient.js';

/** What the catalog-scale run measured. */
export interface CatalogScaleResult {
  agents: number;
  tools: number;
  /** From the fleet's last registration to a client's tools/list holding every tool, ms. */
  catalogReadyMs: number;
  /** A client's full tools/list (every page), ms. */
  toolsList: LatencySummary;
  routerBefore: ProcessMemory;
  routerAfter: ProcessMemory;
}

export async function catalogScale(agents: number, listings = 30): Promise<CatalogScaleResult> {
  const nats = await NatsServerProcess.start();
  const router = FlotillaProcess.spawn('router', ['router', '--nats', nats.url, '--port', '0'], { LOG_LEVEL: 'info' });
  const fleet = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fleet.ts', import.meta.url)), '--agents', String(agents), '--nats', nats.url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const routerUrl = String((await router.ready()).url);
    const metricsUrl = routerUrl.replace(/\/mcp$/, '/metrics');
    const routerBefore = await processMemory(metricsUrl, 'flotilla_router');
    await once(fleet.stdout!, 'data');
    const fleetReady = performance.now();
    const expected = agents * TOOLS_PER_SERVER;
    const session = await RawMcpSession.open(routerUrl);
    while ((await session.listTools()) < expected) {
      if (performance.now() - fleetReady > 120_000) throw new Error(`the router never listed ${expected} tools`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const catalogReadyMs = performance.now() - fleetReady;
    const samples: number[] = [];
    for (let i = 0; i < listings; i++) {
      const t0 = performance.now();
      await session.listTools();
      samples.push(performance.now() - t0);
    }
    const routerAfter = await processMemory(metricsUrl, 'flotilla_router');
    await session.close();
    return { agents, tools: expected, catalogReadyMs, toolsList: summarize(samples), routerBefore, routerAfter };
  } finally {
    fleet.kill('SIGTERM');
    await Promise.race([once(fleet, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
    fleet.kill('SIGKILL');
    await router.stop();
    await nats.dispose();
  }
}
