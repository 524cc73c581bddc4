/**
 * Third-party modules that test code outside this package uses. `test/` at the repository root has no
 * package.json of its own, so test/consul-standin borrows @flotilla/registry's (dev)dependencies through
 * this module instead of resolving them from the root.
 */
import * as grpc from '@grpc/grpc-js';
export { grpc };
export { HealthImplementation, service as grpcHealthServiceDefinition, type ServingStatus } from 'grpc-health-check';
export { z } from 'zod';
export { createLogger, type Logger } from '@flotilla/telemetry';
