import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/telemetry';
import { NatsKvRegistry } from './nats-kv/NatsKvRegistry.js';
import type { Registry, RegistryTimings } from './Registry.js';

/** Registry backends selectable with `--registry`. */
export const REGISTRY_KINDS = ['nats-kv'] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** What {@link createRegistry} needs; each backend reads the part it uses. */
export interface CreateRegistryOptions {
  kind: RegistryKind;
  logger: Logger;
  /** NATS connection (nats-kv backend). */
  nc?: NatsConnection;
  prefix?: string;
  timings?: Partial<RegistryTimings>;
  env?: NodeJS.ProcessEnv;
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
      });
    }
  }
}
