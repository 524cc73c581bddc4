/** The registry conformance suite against NatsKvRegistry on a real nats-server (JetStream). */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { subjects } from '@flotilla/protocol';
import { createLogger } from '@flotilla/telemetry';
import { NatsServerProcess } from '../../../test/harness/NatsServerProcess.js';
import { NatsKvRegistry, type Registry, type RegistryTimings } from '../src/index.js';
import { runRegistryConformance } from './conformance.js';

const timings: RegistryTimings = { heartbeatIntervalMs: 300, staleAfterMs: 3000 };
const prefix = 'conformance';
const bucket = subjects(prefix).registryBucket;
const logger = createLogger({ name: 'nats-kv-conformance', level: process.env.LOG_LEVEL ?? 'silent' });
let nats: NatsServerProcess;
const connections = new Set<NatsConnection>();

/** A connection that rides out server restarts, as agents and routers configure theirs. */
async function natsConnection(): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 5000 });
  connections.add(nc);
  return nc;
}

async function withKv<T>(use: (kv: Awaited<ReturnType<Kvm['open']>>) => Promise<T>): Promise<T> {
  const nc = await natsConnection();
  try {
    // Same bucket settings as NatsKvRegistry, so creating it here cannot conflict.
    const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: 5 * 60_000 });
    return await use(kv);
  } finally {
    await nc.close();
    connections.delete(nc);
  }
}

runRegistryConformance(
  'nats-kv',
  async () => {
    nats = await NatsServerProcess.start();
    return {
      timings,
      async createRegistry(): Promise<Registry> {
        const nc = await natsConnection();
        const registry = new NatsKvRegistry(nc, { prefix, timings, logger });
        // The registry leaves its connection alone; the suite's "agent" owns and closes it.
        const close = registry.close.bind(registry);
        registry.close = async () => {
          await close();
          await nc.close().catch(() => {});
          connections.delete(nc);
        };
        return registry;
      },
      injectMalformed: (nodeId) => withKv(async (kv) => void (await kv.put(`nodes.${nodeId}`, '{"record": "not a record"'))),
      removeMalformed: (nodeId) => withKv(async (kv) => void (await kv.purge(`nodes.${nodeId}`))),
      outage: {
        modes: ['keep-state', 'lose-state'],
        stop: () => nats.stop(),
        async start({ loseState }) {
          if (loseState) await rm(join(nats.storeDir, 'jetstream'), { recursive: true, force: true });
          await nats.restart();
        },
      },
    };
  },
  async () => {
    for (const nc of connections) await nc.close().catch(() => {});
    await nats?.dispose();
  },
);
