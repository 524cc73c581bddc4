import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { natsSettingsFromEnv, resolveNatsSettings, type NatsSettings } from '@flotilla/trust';

/** The NATS auth/TLS flags as commander parses them. */
export interface NatsFlags {
  nats: string;
  natsUser?: string;
  natsPasswordFile?: string;
  natsTokenFile?: string;
  natsNkeySeedFile?: string;
  natsCreds?: string;
  natsCa?: string;
  natsCert?: string;
  natsKey?: string;
  natsTls?: boolean;
}

/**
 * Adds the NATS authentication and TLS flags to a command that has `--nats <url>`. Secrets are taken from
 * files (never from the command line, where `ps` shows them); the environment gives the same settings
 * (`NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY_SEED_FILE`, `NATS_CREDS`, `NATS_CA`, `NATS_CERT`,
 * `NATS_KEY`, `NATS_TLS`), and a flag wins over its variable.
 */
export function withNatsFlags(command: Command): Command {
  return command
    .addOption(new Option('--nats-user <name>', 'NATS user (password from --nats-password-file or NATS_PASSWORD)'))
    .addOption(new Option('--nats-password-file <file>', 'file holding the NATS password'))
    .addOption(new Option('--nats-token-file <file>', 'file holding a NATS token (or NATS_TOKEN)'))
    .addOption(new Option('--nats-nkey-seed-file <file>', 'NKey user seed file to authenticate with (or NATS_NKEY_SEED_FILE)'))
    .addOption(new Option('--nats-creds <file>', 'NATS .creds file (user JWT + seed; or NATS_CREDS)'))
    .addOption(new Option('--nats-ca <file>', 'CA bundle for the NATS server certificate (or NATS_CA)'))
    .addOption(new Option('--nats-cert <file>', 'client certificate for mutual TLS (or NATS_CERT)'))
    .addOption(new Option('--nats-key <file>', 'key of the client certificate (or NATS_KEY)'))
    .addOption(new Option('--nats-tls', 'require TLS even without a CA file (or NATS_TLS=1)'));
}

function secretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The NATS settings of a command: its flags over the environment. */
export function natsSettingsOf(o: NatsFlags, env: NodeJS.ProcessEnv = process.env): NatsSettings {
  const given: Partial<NatsSettings> = {
    servers: o.nats,
    ...(o.natsUser !== undefined ? { user: o.natsUser } : {}),
    ...(o.natsPasswordFile !== undefined ? { password: secretFile(o.natsPasswordFile, 'NATS password') } : {}),
    ...(o.natsTokenFile !== undefined ? { token: secretFile(o.natsTokenFile, 'NATS token') } : {}),
    ...(o.natsNkeySeedFile !== undefined ? { nkeySeedFile: o.natsNkeySeedFile } : {}),
    ...(o.natsCreds !== undefined ? { credsFile: o.natsCreds } : {}),
    ...(o.natsCa !== undefined ? { caFile: o.natsCa } : {}),
    ...(o.natsCert !== undefined ? { certFile: o.natsCert } : {}),
    ...(o.natsKey !== undefined ? { keyFile: o.natsKey } : {}),
    ...(o.natsTls ? { tls: true } : {}),
  };
  // A password file given with a user from the environment (or the other way round) still pairs up.
  if (given.password !== undefined && given.user === undefined && env.NATS_USER) given.user = env.NATS_USER;
  return resolveNatsSettings(given, natsSettingsFromEnv(env));
}

/** The same settings less the servers, as `startAgent`/`startRouter` take them beside `natsUrl`. */
export function natsAuthOf(settings: NatsSettings): Omit<NatsSettings, 'servers'> {
  const { servers: _servers, ...rest } = settings;
  return rest;
}
