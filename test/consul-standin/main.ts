/**
 * Runs the Consul stand-in as a process, for manual runs and process-level tests:
 *
 *   node --import tsx test/consul-standin/main.ts --port 8500 [--write-token T] [--read-token R]
 *        [--check-update-interval 5m] [--reap-interval 30s] [--deregister-minimum 1m]
 *
 * It prints one JSON log line `consul stand-in ready` with its URL, and stops on SIGINT/SIGTERM.
 * It is a stand-in for the few Consul endpoints Flotilla uses, not Consul.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../packages/registry/test/support/testDeps.js';
import { ConsulStandIn } from './ConsulStandIn.js';
import { parseGoDuration } from './goDuration.js';
import type { StandInAclConfig } from './standInAcl.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8500' },
    host: { type: 'string', default: '127.0.0.1' },
    'write-token': { type: 'string', multiple: true },
    'read-token': { type: 'string', multiple: true },
    'check-update-interval': { type: 'string' },
    'reap-interval': { type: 'string' },
    'deregister-minimum': { type: 'string' },
  },
});

function durationOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseGoDuration(value);
  if (ms === undefined) throw new Error(`--${name}: "${value}" is not a duration like 30s or 5m`);
  return ms;
}

const logger = createLogger({ name: 'consul-standin' });
const tokens: StandInAclConfig['tokens'] = {};
for (const t of values['write-token'] ?? []) tokens[t] = 'write';
for (const t of values['read-token'] ?? []) tokens[t] = 'read';
const checkUpdateIntervalMs = durationOption('check-update-interval', values['check-update-interval']);
const reapIntervalMs = durationOption('reap-interval', values['reap-interval']);
const deregisterCriticalMinimumMs = durationOption('deregister-minimum', values['deregister-minimum']);

const standIn = await ConsulStandIn.start({
  port: Number(values.port),
  host: values.host,
  logger,
  ...(Object.keys(tokens).length > 0 ? { acl: { tokens } } : {}),
  ...(checkUpdateIntervalMs !== undefined ? { checkUpdateIntervalMs } : {}),
  ...(reapIntervalMs !== undefined ? { reapIntervalMs } : {}),
  ...(deregisterCriticalMinimumMs !== undefined ? { deregisterCriticalMinimumMs } : {}),
});
logger.info({ url: standIn.url, acl: Object.keys(tokens).length > 0 }, 'consul stand-in ready');

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void standIn.dispose().then(() => process.exit(0));
  });
}
