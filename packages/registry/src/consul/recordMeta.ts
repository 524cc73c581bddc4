import { createHash } from 'node:crypto';
import { NodeRecordSchema, PROTOCOL_VERSION, serverAffinity, type NodeRecord } from '@flotilla/protocol';
import { RegistryConfigError } from '../Registry.js';

/**
 * Encoding of a {@link NodeRecord} in Consul service `Meta`.
 *
 * Consul limits service meta to 64 pairs, keys of at most 128 characters from `[A-Za-z0-9_-]` (no
 * `consul-` prefix) and values of at most 512 bytes. A record with many servers is larger than one value,
 * so the meta holds:
 * - readable essentials for operators and Consul filter expressions (`instance-id`, `version`, `zone`,
 *   `grpc-health`, `capacity`, `draining`, `started-at`, `flotilla-v`), each omitted when absent or too long;
 * - the full record as ASCII-only JSON (non-ASCII escaped as `\uXXXX`, so characters equal bytes) split into
 *   `record-0` … `record-<n-1>` values of at most 512 bytes, with `record-chunks` = n and `record-sha256`
 *   the SHA-256 of the joined JSON, so a reader can tell a complete record from a torn or edited one;
 * - `tool-digest-<server>` per hosted server when all of them fit in the remaining pairs (the record,
 *   which always carries the digests, stays authoritative);
 * - `sticky-servers`: the names of the servers with `affinity: sticky`, comma-separated, when there are
 *   any and the value and a pair for it fit (the record, which carries every server's affinity, stays
 *   authoritative).
 * Readers use only the record chunks; the readable keys are a view of the same record.
 */
export const RECORD_META = {
  protocol: 'flotilla-v',
  instanceId: 'instance-id',
  version: 'version',
  zone: 'zone',
  healthAddress: 'grpc-health',
  capacity: 'capacity',
  draining: 'draining',
  startedAt: 'started-at',
  chunks: 'record-chunks',
  sha256: 'record-sha256',
  chunkPrefix: 'record-',
  toolDigestPrefix: 'tool-digest-',
  stickyServers: 'sticky-servers',
} as const;

/** Consul's limits on service meta (agent/structs: metaMaxKeyPairs, metaValueMaxLength). */
export const CONSUL_META_MAX_PAIRS = 64;
export const CONSUL_META_VALUE_MAX_BYTES = 512;

/** Thrown when a record cannot be expressed within Consul's meta limits. */
export class RecordTooLargeError extends RegistryConfigError {
  constructor(readonly nodeId: string, detail: string) {
    super(`the record of node "${nodeId}" does not fit in Consul service meta (${detail}); host fewer servers on this agent`);
    this.name = 'RecordTooLargeError';
  }
}

/** JSON with every non-ASCII UTF-16 unit escaped, so its length in characters equals its length in bytes. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Encodes a record as Consul service meta (see {@link RECORD_META}). */
export function encodeRecordMeta(record: NodeRecord): Record<string, string> {
  const json = asciiJson(record);
  const chunks: string[] = [];
  for (let i = 0; i < json.length; i += CONSUL_META_VALUE_MAX_BYTES) chunks.push(json.slice(i, i + CONSUL_META_VALUE_MAX_BYTES));

  const meta: Record<string, string> = {};
  const putReadable = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '' && Buffer.byteLength(value) <= CONSUL_META_VALUE_MAX_BYTES) meta[key] = value;
  };
  putReadable(RECORD_META.protocol, String(PROTOCOL_VERSION));
  putReadable(RECORD_META.instanceId, record.instanceId);
  putReadable(RECORD_META.version, record.version);
  putReadable(RECORD_META.zone, record.zone);
  putReadable(RECORD_META.healthAddress, record.healthAddress);
  putReadable(RECORD_META.capacity, String(record.capacity));
  putReadable(RECORD_META.draining, String(record.draining));
  putReadable(RECORD_META.startedAt, String(record.startedAt));
  meta[RECORD_META.chunks] = String(chunks.length);
  meta[RECORD_META.sha256] = sha256(json);
  chunks.forEach((chunk, i) => (meta[`${RECORD_META.chunkPrefix}${i}`] = chunk));

  const used = Object.keys(meta).length;
  if (used > CONSUL_META_MAX_PAIRS) {
    throw new RecordTooLargeError(record.nodeId, `${json.length} bytes of JSON need ${used} meta pairs, Consul allows ${CONSUL_META_MAX_PAIRS}`);
  }
  putStickyServers(meta, record);
  putToolDigests(meta, record);
  return meta;
}

/** The readable `sticky-servers` view, when some server is sticky and it fits. */
function putStickyServers(meta: Record<string, string>, record: NodeRecord): void {
  const sticky = record.servers.filter((s) => serverAffinity(s) === 'sticky').map((s) => s.name);
  if (sticky.length === 0 || Object.keys(meta).length >= CONSUL_META_MAX_PAIRS) return;
  const value = sticky.join(',');
  if (Buffer.byteLength(value) <= CONSUL_META_VALUE_MAX_BYTES) meta[RECORD_META.stickyServers] = value;
}

/** The readable `tool-digest-<server>` views, when all of them fit. */
function putToolDigests(meta: Record<string, string>, record: NodeRecord): void {
  const used = Object.keys(meta).length;
  const digests = record.servers.filter((s) => Buffer.byteLength(s.toolDigest) <= CONSUL_META_VALUE_MAX_BYTES);
  if (digests.length === record.servers.length && used + digests.length <= CONSUL_META_MAX_PAIRS) {
    for (const server of record.servers) meta[`${RECORD_META.toolDigestPrefix}${server.name}`] = server.toolDigest;
  }
}

/** Result of decoding service meta: the record, or why it could not be read. */
export type DecodedRecordMeta = { ok: true; record: NodeRecord } | { ok: false; error: string };

/** Reassembles and validates the record from service meta; never throws. */
export function decodeRecordMeta(meta: Readonly<Record<string, string>> | null | undefined): DecodedRecordMeta {
  if (!meta) return { ok: false, error: 'service has no meta' };
  const countText = meta[RECORD_META.chunks];
  const count = countText !== undefined && /^\d+$/.test(countText) ? Number(countText) : NaN;
  if (!Number.isInteger(count) || count < 1 || count > CONSUL_META_MAX_PAIRS) {
    return { ok: false, error: `meta "${RECORD_META.chunks}" is missing or invalid (${JSON.stringify(countText)})` };
  }
  let json = '';
  for (let i = 0; i < count; i++) {
    const chunk = meta[`${RECORD_META.chunkPrefix}${i}`];
    if (chunk === undefined) return { ok: false, error: `meta "${RECORD_META.chunkPrefix}${i}" is missing` };
    json += chunk;
  }
  if (sha256(json) !== meta[RECORD_META.sha256]) return { ok: false, error: `record chunks do not match "${RECORD_META.sha256}"` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    return { ok: false, error: `record is not JSON: ${(err as Error).message}` };
  }
  const result = NodeRecordSchema.safeParse(parsed);
  if (!result.success) {
    return { ok: false, error: result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  return { ok: true, record: result.data };
}
