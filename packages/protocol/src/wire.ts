import type { z } from 'zod';

/** Encodes a value as UTF-8 JSON for a NATS payload or KV value. */
export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Result of decoding a payload at the boundary: the value, or a message saying what was wrong. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** Decodes and validates a NATS payload or KV value; never throws on bad input. */
export function decodeJson<S extends z.ZodType>(schema: S, data: Uint8Array): Decoded<z.output<S>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${(err as Error).message}` };
  }
  const result = schema.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}
