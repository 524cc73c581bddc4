import { PROTOCOL_VERSION, type NodeRecord } from '@flotilla/protocol';
import type { ConsulCheckSettings } from '../../src/index.js';

/** The record behind deploy/consul/flotilla-agent.register.json; a test keeps that file in step with the code. */
export const EXAMPLE_RECORD: NodeRecord = {
  v: PROTOCOL_VERSION,
  nodeId: 'node-a',
  instanceId: '3f0c6a52-9d2e-4c1b-8a77-5e2b1d4c9f10',
  mcpBaseUrl: 'http://10.0.0.12:7801',
  servers: [
    { name: 'echo', path: '/mcp/echo', toolDigest: 'sha256:9b2f6c0e4a1d', toolCount: 2 },
    { name: 'files', path: '/mcp/files', toolDigest: 'sha256:c41e07aa5b93', toolCount: 6 },
  ],
  version: '0.1.0',
  zone: 'eu-west-1a',
  healthAddress: '10.0.0.12:7802',
  capacity: 16,
  startedAt: 1764000000000,
  draining: false,
};

/** Check settings of the example: the defaults of ConsulRegistry with the default timings. */
export const EXAMPLE_CHECKS: ConsulCheckSettings = { ttlMs: 3000, grpcIntervalMs: 5000, grpcTimeoutMs: 2000, deregisterCriticalAfterMs: 60_000 };
