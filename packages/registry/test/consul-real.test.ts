/**
 * The registry conformance suite and the gRPC check against a REAL Consul, when `CONSUL_HTTP_ADDR` is set:
 *
 *   CONSUL_HTTP_ADDR=127.0.0.1:8500 node --import tsx --test packages/registry/test/consul-real.test.ts
 *
 * `CONSUL_HTTP_TOKEN` is used when set (needs service:write on the test service, service:read, node:read).
 * The Consul agent runs gRPC checks against a health server this test starts on 127.0.0.1; when Consul
 * cannot reach that (e.g. Consul in a container), set FLOTILLA_TEST_HEALTH_BIND (e.g. 0.0.0.0) and
 * FLOTILLA_TEST_HEALTH_HOST (the address Consul can reach). Nodes register under a service name unique to
 * the run (`flotilla-agent-conformance-<random>`), so the run never touches real agents. Outage tests are
 * skipped: the test cannot stop a real Consul (the stand-in run covers them).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@flotilla/telemetry';
import { consulSettingsFromEnv, createRegistry, type Registry, type RegistryTimings } from '../src/index.js';
import { WatchRecorder, runRegistryConformance, testPing, testRecord, uniqueNodeId } from './conformance.js';
import { GrpcHealthServer } from './support/GrpcHealthServer.js';

const address = process.env.CONSUL_HTTP_ADDR;
const SKIP_REASON = 'CONSUL_HTTP_ADDR is not set: the real-Consul run needs a Consul agent (e.g. CONSUL_HTTP_ADDR=127.0.0.1:8500); CI runs the same suite against the Consul stand-in instead';

if (!address) {
  describe('registry conformance: consul (real Consul)', () => {
    it('runs against a real Consul', { skip: SKIP_REASON }, () => {});
  });
} else {
  const timings: RegistryTimings = { heartbeatIntervalMs: 300, staleAfterMs: 3000 };
  const serviceName = `flotilla-agent-conformance-${randomUUID().slice(0, 8)}`;
  const logger = createLogger({ name: 'consul-real-test', level: process.env.LOG_LEVEL ?? 'silent' });
  const token = process.env.CONSUL_HTTP_TOKEN;
  let health: GrpcHealthServer | undefined;
  const newRegistry = (): Registry =>
    createRegistry({
      kind: 'consul',
      logger,
      timings,
      env: process.env,
      consul: { serviceName, grpcCheckIntervalMs: 1000, grpcCheckTimeoutMs: 1000, watchWaitMs: 5000, watchMaxBackoffMs: 1000 },
    });
  const baseUrl = consulSettingsFromEnv(process.env).baseUrl;
  const consulFetch = (path: string, body?: unknown): Promise<Response> =>
    fetch(`${baseUrl}${path}`, {
      method: 'PUT',
      headers: token ? { 'X-Consul-Token': token } : {},
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const healthOptions = {
    ...(process.env.FLOTILLA_TEST_HEALTH_BIND ? { bindHost: process.env.FLOTILLA_TEST_HEALTH_BIND } : {}),
    ...(process.env.FLOTILLA_TEST_HEALTH_HOST ? { advertiseHost: process.env.FLOTILLA_TEST_HEALTH_HOST } : {}),
  };

  runRegistryConformance(
    `consul (real Consul at ${address})`,
    async () => {
      health = await GrpcHealthServer.start(healthOptions);
      return {
        timings,
        healthAddress: health.address,
        createRegistry: async () => newRegistry(),
        async injectMalformed(nodeId) {
          const res = await consulFetch('/v1/agent/service/register', {
            ID: nodeId,
            Name: serviceName,
            Port: 9,
            Meta: { 'record-chunks': '1', 'record-0': '{"nodeId": "not closed', 'record-sha256': 'x' },
            Checks: [{ CheckID: `malformed:${nodeId}`, Name: 'always passing', TTL: '10m', Status: 'passing' }],
          });
          assert.equal(res.status, 200, await res.text());
        },
        async removeMalformed(nodeId) {
          await consulFetch(`/v1/agent/service/deregister/${nodeId}`);
        },
        outageSkipReason: 'the test cannot stop a real Consul; the stand-in run covers registry outages',
      };
    },
    async () => {
      await health?.stop();
    },
  );

  describe(`ConsulRegistry on a real Consul at ${address}`, () => {
    let own: GrpcHealthServer;
    before(async () => {
      own = await GrpcHealthServer.start(healthOptions);
    });
    after(async () => {
      await own.stop();
    });

    it('Consul runs the gRPC check: NOT_SERVING makes the node critical, SERVING brings it back', async () => {
      const registry = newRegistry();
      const watcher = new WatchRecorder(newRegistry());
      const rec = testRecord(uniqueNodeId('grpc-real'), {}, own.address);
      const heartbeat = setInterval(() => void registry.heartbeat(rec, testPing()).catch(() => {}), timings.heartbeatIntervalMs);
      try {
        await registry.register(rec);
        await registry.heartbeat(rec, testPing());
        await watcher.until('node live', (w) => w.node(rec.nodeId)?.health === 'passing', 60_000);
        own.setStatus('NOT_SERVING');
        await watcher.until('node left the live view', (w) => !w.has(rec.nodeId), 60_000);
        own.setStatus('SERVING');
        await watcher.until('node live again', (w) => w.node(rec.nodeId)?.health === 'passing', 60_000);
      } finally {
        clearInterval(heartbeat);
        await watcher.watch.stop();
        await registry.deregister(rec.nodeId).catch(() => {});
        await registry.close();
      }
    });
  });
}
