import { connect, type NatsConnection } from '@nats-io/transport-node';

/** Connects a short-lived CLI command to NATS, failing fast with a message that says where it tried. */
export async function connectForCommand(url: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, timeout: 3000, maxReconnectAttempts: 0, name: 'flotilla-cli' });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${url} (${(err as Error).message}); set --nats or NATS_URL`);
  }
}
