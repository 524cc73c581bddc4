/**
 * Simulated fleet for the catalog-scale benchmark: `--agents` real agents in one process (each its own
 * HTTP and gRPC ports, NATS connection and registry record), each hosting one 50-tool server, so the router
 * faces as many real MCP endpoints. Prints `{"ready":n}` once every agent has registered.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startAgent, type RunningAgent } from '../../../packages/agent/src/index.js';
import { createLogger } from '../../../packages/telemetry/src/index.js';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '100' }, nats: { type: 'string' } } });
const count = Number(values.agents);
const logger = createLogger({ name: 'fleet', level: 'warn' });
const module = fileURLToPath(new URL('./fiftyTools.ts', import.meta.url));
const agents: RunningAgent[] = [];
// A few at a time: 100 agents starting at once would mostly measure the machine's contention.
for (let i = 0; i < count; i += 10) {
  const batch = Array.from({ length: Math.min(10, count - i) }, (_, j) =>
    startAgent({ nodeId: `fleet-${String(i + j).padStart(3, '0')}`, natsUrl: values.nats!, servers: [{ name: `w${String(i + j).padStart(3, '0')}`, module }], port: 0, grpcPort: 0, logger: logger.child({ nodeId: `fleet-${i + j}` }) }),
  );
  agents.push(...(await Promise.all(batch)));
}
process.stdout.write(`${JSON.stringify({ ready: agents.length })}\n`);
process.on('SIGTERM', () => void Promise.allSettled(agents.map((a) => a.stop())).then(() => process.exit(0)));
