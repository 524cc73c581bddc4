import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describeNats, natsConnectionOptions, type NatsSettings } from '@flotilla/trust';

/** Connects a short-lived CLI command to NATS, failing fast with a message that says where it tried (never the secrets). */
export async function connectForCommand(settings: NatsSettings): Promise<NatsConnection> {
  try {
    return await connect(natsConnectionOptions(settings, { timeout: 3000, maxReconnectAttempts: 0, name: 'flotilla-cli' }));
  } catch (err) {
    const where = describeNats(settings);
    throw new Error(`cannot reach NATS at ${where.servers} (auth: ${where.auth}, TLS: ${where.tls}): ${(err as Error).message}; set --nats or NATS_URL and the NATS credentials`);
  }
}
