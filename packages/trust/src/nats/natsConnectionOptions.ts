import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { readSeedFile } from '../keys/readKeyFile.js';
import type { NatsSettings } from './NatsSettings.js';

/**
 * The nats.js connection options for `settings`: servers, the authentication method and TLS, plus what
 * the caller adds (`name`, reconnect policy...). Seed and creds files are read by the authenticator on every
 * (re)connect: a file replaced in place is used from the next connection on (rotation without restart).
 * Files that cannot be read fail the connect attempt with a message naming the file, not its content.
 */
export function natsConnectionOptions(settings: NatsSettings, extra: Partial<NodeConnectionOptions> = {}): NodeConnectionOptions {
  const options: NodeConnectionOptions = { ...extra, servers: settings.servers.split(',').map((s) => s.trim()).filter(Boolean) };
  if (settings.user !== undefined) {
    options.user = settings.user;
    if (settings.password !== undefined) options.pass = settings.password;
  }
  if (settings.token !== undefined) options.token = settings.token;
  const seedFile = settings.nkeySeedFile;
  if (seedFile !== undefined) options.authenticator = nkeyAuthenticator(() => new TextEncoder().encode(readSeedFile(seedFile)));
  const credsFile = settings.credsFile;
  if (credsFile !== undefined) {
    options.authenticator = credsAuthenticator(() => {
      try {
        return readFileSync(credsFile);
      } catch (err) {
        throw new Error(`cannot read NATS creds file ${credsFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    });
  }
  if (settings.caFile || settings.certFile || settings.keyFile || settings.tls) {
    options.tls = {
      ...(settings.caFile ? { caFile: settings.caFile } : {}),
      ...(settings.certFile ? { certFile: settings.certFile } : {}),
      ...(settings.keyFile ? { keyFile: settings.keyFile } : {}),
    };
  }
  if (settings.inboxPrefix !== undefined) options.inboxPrefix = settings.inboxPrefix;
  return options;
}
