import { z } from 'zod';

/**
 * How a component connects to NATS: servers, at most one authentication method, and TLS. The same settings
 * come from flags or from the environment ({@link natsSettingsFromEnv}); secrets are passed as files where
 * the NATS tools do (nkey seed, `.creds`), and never logged ({@link describeNats}).
 */
export const NatsSettingsSchema = z
  .object({
    /** Comma-separated server URLs (`nats://` or `tls://`); may carry `user:pass@` (redacted in logs). */
    servers: z.string().min(1),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    token: z.string().min(1).optional(),
    /** A file holding an NKey user seed (`nk -gen user`); re-read on every (re)connect, so it can be rotated in place. */
    nkeySeedFile: z.string().min(1).optional(),
    /** A NATS `.creds` file (user JWT + seed, decentralized auth); re-read on every (re)connect. */
    credsFile: z.string().min(1).optional(),
    /** CA bundle that signs the server certificate; setting any TLS file turns TLS on. */
    caFile: z.string().min(1).optional(),
    /** Client certificate (mutual TLS) and its key. */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** Require TLS even without files (the system's CAs verify the server). */
    tls: z.boolean().optional(),
    /** Prefix of this client's reply subjects, so the server can allow it only its own (`_INBOX_<name>`). */
    inboxPrefix: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/).optional(),
  })
  .superRefine((s, ctx) => {
    const methods = [s.user !== undefined, s.token !== undefined, s.nkeySeedFile !== undefined, s.credsFile !== undefined].filter(Boolean).length;
    if (methods > 1) ctx.addIssue({ code: 'custom', message: 'give one NATS authentication method: user/password, token, nkey seed file or creds file' });
    if (s.password !== undefined && s.user === undefined) ctx.addIssue({ code: 'custom', message: 'a NATS password needs a user (NATS_USER / --nats-user)' });
    if ((s.certFile === undefined) !== (s.keyFile === undefined)) ctx.addIssue({ code: 'custom', message: 'a NATS client certificate needs its key, and a key its certificate (NATS_CERT and NATS_KEY together)' });
  });
export type NatsSettings = z.infer<typeof NatsSettingsSchema>;

/** Default NATS URL when neither a flag nor `NATS_URL` gives one. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/**
 * NATS settings from the environment, the convention of the `nats` CLI where it has one: `NATS_URL`,
 * `NATS_USER` + `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY_SEED_FILE` (or `NATS_NKEY`), `NATS_CREDS`,
 * `NATS_CA`, `NATS_CERT` + `NATS_KEY`, `NATS_TLS=1`, `NATS_INBOX_PREFIX`. Empty values count as unset.
 */
export function natsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<NatsSettings> {
  const v = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const pick: Partial<NatsSettings> = {
    servers: v('NATS_URL'),
    user: v('NATS_USER'),
    password: v('NATS_PASSWORD'),
    token: v('NATS_TOKEN'),
    nkeySeedFile: v('NATS_NKEY_SEED_FILE') ?? v('NATS_NKEY'),
    credsFile: v('NATS_CREDS'),
    caFile: v('NATS_CA'),
    certFile: v('NATS_CERT'),
    keyFile: v('NATS_KEY'),
    tls: v('NATS_TLS') === '1' || v('NATS_TLS') === 'true' ? true : undefined,
    inboxPrefix: v('NATS_INBOX_PREFIX'),
  };
  return Object.fromEntries(Object.entries(pick).filter(([, x]) => x !== undefined)) as Partial<NatsSettings>;
}

/**
 * Resolves settings: `given` (flags, options) wins over `fromEnv` field by field, except that an
 * authentication method given explicitly replaces the environment's (so `--nats-creds` is not mixed with
 * `NATS_USER`). Throws an Error naming what is wrong.
 */
export function resolveNatsSettings(given: Partial<NatsSettings>, fromEnv: Partial<NatsSettings> = {}): NatsSettings {
  const authKeys = ['user', 'password', 'token', 'nkeySeedFile', 'credsFile'] as const;
  const givenAuth = authKeys.some((k) => given[k] !== undefined);
  const base: Partial<NatsSettings> = { ...fromEnv };
  if (givenAuth) for (const k of authKeys) delete base[k];
  const defined = Object.fromEntries(Object.entries(given).filter(([, x]) => x !== undefined));
  const parsed = NatsSettingsSchema.safeParse({ servers: DEFAULT_NATS_URL, ...base, ...defined });
  if (!parsed.success) throw new Error(`invalid NATS settings: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'nats'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** A URL list with any `user:password@` replaced by `***@`, for logs and error messages. */
export function redactServers(servers: string): string {
  return servers.replace(/(\w+:\/\/)[^@/,\s]*@/g, '$1***@');
}

/** What the settings connect with, safe to log: servers (redacted), auth method and TLS; never a secret. */
export function describeNats(s: NatsSettings): { servers: string; auth: string; tls: string } {
  const auth = s.credsFile
    ? `creds file ${s.credsFile}`
    : s.nkeySeedFile
      ? `nkey seed file ${s.nkeySeedFile}`
      : s.token
        ? 'token'
        : s.user
          ? `user ${s.user}`
          : /\w+:\/\/[^@/,\s]+@/.test(s.servers)
            ? 'credentials in the URL'
            : 'none';
  const tls = s.caFile || s.certFile || s.tls || /(^|,)\s*tls:\/\//.test(s.servers) ? `on${s.certFile ? ' (client certificate)' : ''}` : 'off';
  return { servers: redactServers(s.servers), auth, tls };
}
