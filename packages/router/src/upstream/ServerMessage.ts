import { z } from 'zod';
import { keepResultText } from './ResultText.js';
import { sanitizeUpstreamText } from './sanitizeUpstreamText.js';

/** A JSON-RPC id as servers send it. */
export type MessageId = string | number;

const IdSchema = z.union([z.string().max(512), z.number().finite()]);

/**
 * The JSON-RPC envelope of whatever a server sends the router: what is checked before anything is read
 * from it. Params and results stay opaque here (the router passes most of them through untouched); the
 * parts the router reads are checked where it reads them. Built once: this runs on every message.
 */
const EnvelopeSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: z.union([IdSchema, z.null()]).optional(),
  method: z.string().min(1).max(256).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  result: z.record(z.string(), z.unknown()).optional(),
  error: z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() }).optional(),
});

/** A request from the server (sampling, elicitation, roots/list, ping…). */
export interface ServerRequestMessage {
  readonly kind: 'request';
  readonly id: MessageId;
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
}

/** A notification from the server (progress, log message, list_changed…). */
export interface ServerNotificationMessage {
  readonly kind: 'notification';
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
}

/** The server's answer to one of the router's requests. */
export interface ServerResponseMessage {
  readonly kind: 'response';
  readonly id: MessageId | null;
  readonly result?: Record<string, unknown>;
  readonly error?: { readonly code: number; readonly message: string; readonly data?: unknown };
}

export type ServerMessage = ServerRequestMessage | ServerNotificationMessage | ServerResponseMessage;

/** Why a server's message was not accepted. */
export class MalformedServerMessage extends Error {
  constructor(detail: string) {
    super(`malformed JSON-RPC message from the server${sanitizeUpstreamText(detail) ? `: ${sanitizeUpstreamText(detail)}` : ''}`);
    this.name = 'MalformedServerMessage';
  }
}

/**
 * A plain answer with a result (what nearly every call gets back), recognised without zod: exactly what
 * the envelope schema accepts as a result response; undefined when not certainly one (the schema decides).
 */
function plainResult(value: unknown): (ServerResponseMessage & { readonly id: MessageId; readonly result: Record<string, unknown> }) | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const m = value as Record<string, unknown>;
  if (m['jsonrpc'] !== '2.0' || m['method'] !== undefined || m['params'] !== undefined || m['error'] !== undefined) return undefined;
  const id = m['id'];
  if (!((typeof id === 'string' && id.length <= 512) || (typeof id === 'number' && Number.isFinite(id)))) return undefined;
  const result = m['result'];
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
  return { kind: 'response', id, result: result as Record<string, unknown> };
}

/**
 * Checks one parsed JSON value a server sent and says what kind of message it is. `text`, when given, is
 * the JSON the value was parsed from: a plain result keeps it, so the client's answer can be that text.
 */
export function toServerMessage(value: unknown, text?: string): ServerMessage {
  const plain = plainResult(value);
  if (plain) {
    if (text !== undefined) keepResultText(text, value as Record<string, unknown>, plain.result, plain.id);
    return plain;
  }
  const parsed = EnvelopeSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MalformedServerMessage(issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'not an object');
  }
  const m = parsed.data;
  if (m.method !== undefined) {
    if (m.id === undefined) return { kind: 'notification', method: m.method, params: m.params };
    if (m.id === null) throw new MalformedServerMessage('a request with a null id');
    return { kind: 'request', id: m.id, method: m.method, params: m.params };
  }
  if (m.id === undefined) throw new MalformedServerMessage('neither a method nor an id');
  if (m.error !== undefined) return { kind: 'response', id: m.id, error: m.error };
  if (m.result !== undefined) return { kind: 'response', id: m.id, result: m.result };
  throw new MalformedServerMessage('a response with neither result nor error');
}

/** Parses a JSON body that may hold one message or a batch. */
export function parseServerMessages(text: string): ServerMessage[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MalformedServerMessage(`invalid JSON (${(err as Error).message})`);
  }
  return Array.isArray(json) ? json.map((m) => toServerMessage(m)) : [toServerMessage(json, text)];
}
