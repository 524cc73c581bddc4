import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/telemetry';
import { ConsulRegistry, type ConsulRegistryOptions } from './consul/ConsulRegistry.js';
import { consulSettingsFromEnv } from './consul/ConsulSettings.js';
import { NatsKvRegistry } from './nats-kv/NatsKvRegistry.js';
import type { RecordSigner, Registry, RegistryTimings } from './Registry.js';

/** Registry backends selectable with `--registry`. */
export const REGISTRY_KINDS = ['nats-kv', 'consul'] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** What {@link createRegistry} needs; each backend reads the part it uses. */
export interface CreateRegistryOptions {
  kind: RegistryKind;
  logger: Logger;
  /** NATS connection (nats-kv backend). */
  nc?: NatsConnection;
  prefix?: string;
  timings?: Partial<RegistryTimings>;
  /** Environment to read backend settings from (consul: `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`...); default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Signs the records this registry writes (nats-kv; agents with a node key). */
  signRecord?: RecordSigner;
  /** Consul backend settings; each one given here wins over the environment. */
  consul?: Omit<ConsulRegistryOptions, 'logger' | 'timings'>;
}

/** Builds the configured registry backend. */
export function createRegistry(options: CreateRegistryOptions): Registry {
  switch (options.kind) {
    case 'nats-kv': {
      if (!options.nc) throw new Error('the nats-kv registry needs a NATS connection');
      return new NatsKvRegistry(options.nc, {
        logger: options.logger,
        ...(options.prefix ? { prefix: options.prefix } : {}),
        ...(options.timings ? { timings: options.timings } : {}),
        ...(options.signRecord ? { signRecord: options.signRecord } : {}),
      });
    }
    case 'consul': {
      const fromEnv = consulSettingsFromEnv(options.env ?? process.env);
      const given = Object.fromEntries(Object.entries(options.consul ?? {}).filter(([, v]) => v !== undefined));
      return new ConsulRegistry({
        address: fromEnv.baseUrl,
        serviceName: fromEnv.serviceName,
        ...(fromEnv.token ? { token: fromEnv.token } : {}),
        ...given,
        logger: options.logger,
        ...(options.timings ? { timings: options.timings } : {}),
      });
    }
  }
}
