export * from './Registry.js';
export * from './NodeAnnouncer.js';
export * from './nats-kv/NatsKvRegistry.js';
export * from './createRegistry.js';
