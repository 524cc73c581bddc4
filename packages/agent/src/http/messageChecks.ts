import type { MeshTokenClaims } from '@flotilla/protocol';

/** An answer to a body that must not reach the server: HTTP status and JSON body. */
export interface BodyRefusal {
  status: number;
  body: unknown;
}

type Id = string | number;
interface RpcError {
  jsonrpc: '2.0';
  id: Id | null;
  error: { code: number; message: string };
}

const INVALID_REQUEST = -32600;
const INVALID_PARAMS = -32602;
const UNAUTHORIZED = -32001;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The id of a JSON-RPC request (an object with a method and a string or number id), else undefined. */
export function requestId(m: unknown): Id | undefined {
  if (!isObject(m) || typeof m.method !== 'string') return undefined;
  return typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** What is wrong with one message (its JSON-RPC error), or undefined. */
function messageProblem(m: unknown, grant: MeshTokenClaims | undefined): { code: number; message: string; forbidden?: boolean } | undefined {
  if (!isObject(m) || m.method !== 'tools/call') return undefined;
  const params = m.params;
  if (!isObject(params)) return { code: INVALID_PARAMS, message: `Invalid params: tools/call needs params as a JSON object, got ${describe(params)}` };
  if (typeof params.name !== 'string') return { code: INVALID_PARAMS, message: 'Invalid params: tools/call needs a tool name (params.name, a string)' };
  if (params.arguments !== undefined && !isObject(params.arguments)) {
    return { code: INVALID_PARAMS, message: `Invalid params: tools/call arguments must be a JSON object, got ${describe(params.arguments)}` };
  }
  if (grant && grant.tool !== params.name) {
    return { code: UNAUTHORIZED, message: `Forbidden: the mesh token was issued for ${grant.tool ? `tool "${grant.tool}"` : 'no tool call'}, not "${params.name.slice(0, 64)}"`, forbidden: true };
  }
  return undefined;
}

/**
 * Checks a JSON-RPC body before it reaches the hosted server, and answers what the SDK answers badly:
 * an empty batch (400 Invalid Request; it was 202), two requests with one id in a batch (400, every
 * request answered; there was one answer), `tools/call` params or arguments that are not objects (-32602
 * with a short message; it was -32603 with a schema dump), and a `tools/call` whose tool the mesh token
 * does not name (403). Undefined when the body may pass.
 */
export function checkJsonRpcBody(body: unknown, grant: MeshTokenClaims | undefined): BodyRefusal | undefined {
  if (!Array.isArray(body)) {
    const problem = messageProblem(body, grant);
    if (!problem) return undefined;
    return { status: problem.forbidden ? 403 : 200, body: { jsonrpc: '2.0', id: requestId(body) ?? null, error: { code: problem.code, message: problem.message } } };
  }
  if (body.length === 0) return { status: 400, body: { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'Invalid Request: empty batch' } } };
  const ids = body.map(requestId);
  const seen = new Set<Id>();
  const duplicates = new Set<Id>();
  for (const id of ids) if (id !== undefined) (seen.has(id) ? duplicates : seen).add(id);
  if (duplicates.size > 0) {
    const which = [...duplicates].map((d) => JSON.stringify(d)).join(', ');
    const answers: RpcError[] = ids.filter((id): id is Id => id !== undefined).map((id) => ({
      jsonrpc: '2.0',
      id,
      error: { code: INVALID_REQUEST, message: `Invalid Request: request id ${which} appears more than once in this batch; nothing in it ran` },
    }));
    return { status: 400, body: answers };
  }
  const problems = body.map((m) => messageProblem(m, grant));
  if (problems.every((p) => p === undefined)) return undefined;
  const answers: RpcError[] = [];
  body.forEach((m, i) => {
    const id = ids[i];
    if (id === undefined) return;
    const problem = problems[i];
    answers.push({ jsonrpc: '2.0', id, error: problem ? { code: problem.code, message: problem.message } : { code: INVALID_REQUEST, message: 'Invalid Request: not run, another message in this batch was invalid' } });
  });
  return { status: problems.some((p) => p?.forbidden) ? 403 : 200, body: answers };
}
