import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { fileStamp } from '@flotilla/trust';
import { keyPrincipal, type Identity } from './Identity.js';

/** Prefix of every API key, so leaked keys are easy to find (secret scanners, logs). */
export const API_KEY_PREFIX = 'flt';

const KEY_ID = /^[A-Za-z0-9]{8,32}$/;
const KEY_FORMAT = /^flt_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{32,128})$/;

const KeyEntrySchema = z.object({
  id: z.string().regex(KEY_ID, 'id must be 8-32 letters or digits'),
  /** `sha256:<64 hex>` of the whole key. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'hash must be "sha256:" and 64 lowercase hex digits'),
  subject: z.string().min(1).max(256),
  scopes: z.array(z.string().min(1).max(256)).max(64).default([]),
  roles: z.array(z.string().min(1).max(256)).max(64).default([]),
  /** Metrics label for this key's calls (bounded: operators pick it); default: the identity label policy. */
  label: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  createdAt: z.string().optional(),
  /** A key past this instant is refused (ISO 8601). */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  disabled: z.boolean().default(false),
});

/** The API key file: `{ "keys": [ … ] }`, one entry per key, secrets only as hashes. */
export const ApiKeyFileSchema = z.object({ keys: z.array(KeyEntrySchema).max(100_000) });
export type ApiKeyEntry = z.output<typeof KeyEntrySchema>;

/** A new key: the secret to hand out once, and the entry to store. */
export interface CreatedApiKey {
  readonly key: string;
  readonly entry: z.input<typeof KeyEntrySchema>;
}

/**
 * Makes a new API key: `flt_<id>_<secret>`, 32 random bytes of secret (base64url). The store keeps its
 * SHA-256 only. A fast hash is the right one here (unlike passwords): the secret has 256 bits of entropy,
 * so it cannot be guessed from its hash however fast the hash is, and a fast hash keeps each request's
 * check cheap.
 */
export function createApiKey(options: { subject: string; scopes?: string[]; roles?: string[]; label?: string; expiresAt?: string }): CreatedApiKey {
  const id = randomBytes(8).toString('hex');
  const key = `${API_KEY_PREFIX}_${id}_${randomBytes(32).toString('base64url')}`;
  return {
    key,
    entry: {
      id,
      hash: hashApiKey(key),
      subject: options.subject,
      scopes: options.scopes ?? [],
      roles: options.roles ?? [],
      ...(options.label ? { label: options.label } : {}),
      createdAt: new Date().toISOString(),
      ...(options.expiresAt ? { expiresAt: options.expiresAt } : {}),
    },
  };
}

/** `sha256:<hex>` of a key. */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** Whether a bearer credential looks like an API key (rather than a JWT). */
export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith(`${API_KEY_PREFIX}_`);
}

/**
 * API keys for machine clients, read from a JSON file of hashed keys ({@link ApiKeyFileSchema}) and read
 * again when the file changes (checked at most every `reloadEveryMs`), so keys are added and revoked
 * without a restart. A request's key is found by its id and compared by hash in constant time.
 */
export class ApiKeyStore {
  private byId = new Map<string, ApiKeyEntry>();
  /** The file's {@link fileStamp} when last read. */
  private stamp: string | undefined;
  private checkedAt = 0;
  private reloading: Promise<void> | undefined;

  private constructor(
    private readonly path: string,
    private readonly reloadEveryMs: number,
  ) {}

  /** Reads the key file; throws a message naming the file and each wrong field. */
  static async load(path: string, reloadEveryMs = 2000): Promise<ApiKeyStore> {
    const store = new ApiKeyStore(path, reloadEveryMs);
    await store.reload(true);
    return store;
  }

  get size(): number {
    return this.byId.size;
  }

  /** The identity of `key`, or why it is refused. */
  async verify(key: string, now = Date.now()): Promise<{ ok: true; identity: Identity; label?: string } | { ok: false; description: string }> {
    if (now - this.checkedAt > this.reloadEveryMs) await this.maybeReload();
    const m = KEY_FORMAT.exec(key);
    if (!m) return { ok: false, description: 'The API key is malformed' };
    const entry = this.byId.get(m[1]!);
    const presented = Buffer.from(hashApiKey(key));
    // Compare against something of the same length even when the id is unknown, so timing says nothing.
    const stored = Buffer.from(entry?.hash ?? hashApiKey(''));
    if (!timingSafeEqual(presented, stored) || !entry) return { ok: false, description: 'The API key is not known' };
    if (entry.disabled) return { ok: false, description: 'The API key is disabled' };
    if (entry.expiresAt && Date.parse(entry.expiresAt) <= now) return { ok: false, description: 'The API key expired' };
    return {
      ok: true,
      identity: { kind: 'api-key', subject: entry.subject, keyId: entry.id, scopes: entry.scopes, roles: entry.roles, principal: keyPrincipal(entry.id) },
      ...(entry.label ? { label: entry.label } : {}),
    };
  }

  private maybeReload(): Promise<void> {
    this.reloading ??= this.reload(false).finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async reload(strict: boolean): Promise<void> {
    this.checkedAt = Date.now();
    try {
      const info = await stat(this.path);
      const stamp = fileStamp(info);
      if (stamp === this.stamp) return;
      const text = await readFile(this.path, 'utf8');
      this.byId = parseKeyFile(text, this.path);
      this.stamp = stamp;
    } catch (err) {
      // At start a bad file is fatal; later the keys last read stay in force (a half-written file must not lock everyone out).
      if (strict) throw err;
    }
  }
}

/** Parses an API key file's text; throws a message naming the file and each wrong field. */
export function parseKeyFile(text: string, path: string): Map<string, ApiKeyEntry> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`API key file ${path}: not JSON (${(err as Error).message})`);
  }
  const parsed = ApiKeyFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`API key file ${path}: ${parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`);
  }
  const byId = new Map<string, ApiKeyEntry>();
  for (const entry of parsed.data.keys) {
    if (byId.has(entry.id)) throw new Error(`API key file ${path}: key id ${entry.id} appears twice`);
    byId.set(entry.id, entry);
  }
  return byId;
}
