/**
 * The cheap checks in front of zod on the call path accept only what the schemas accept: a request the
 * front takes without its schema is one `JSONRPCRequestSchema` accepts, and anything else is left to it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSONRPCRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { isPlainRequest } from '../src/front/mcp/plainRequest.js';
import { toServerMessage } from '../src/upstream/ServerMessage.js';

const call = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo_echo', arguments: { text: 'hi' }, _meta: { progressToken: 'p' } } };

describe('isPlainRequest', () => {
  it('takes the usual shapes of a request, each one the schema accepts', () => {
    for (const value of [call, { jsonrpc: '2.0', id: 'a', method: 'ping' }, { jsonrpc: '2.0', id: 0, method: 'tools/list', params: {} }, { ...call, params: { name: 'x', _meta: {} } }]) {
      assert.equal(isPlainRequest(value), true, JSON.stringify(value));
      assert.equal(JSONRPCRequestSchema.safeParse(value).success, true, JSON.stringify(value));
    }
  });

  it('leaves to the schema whatever it is not sure of', () => {
    const unsure: unknown[] = [
      null,
      [call],
      'text',
      { ...call, jsonrpc: '1.0' },
      { ...call, id: 1.5 },
      { ...call, id: 2 ** 60 },
      { ...call, id: null },
      { ...call, id: undefined },
      { ...call, method: 1 },
      { ...call, extra: true },
      { ...call, params: [] },
      { ...call, params: null },
      { ...call, params: { _meta: null } },
      { ...call, params: { _meta: { progressToken: 1.5 } } },
      { ...call, params: { _meta: { progressToken: null } } },
      { ...call, params: { _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't' } } } },
      JSON.parse('{"jsonrpc":"2.0","id":1,"method":"m","__proto__":{}}'),
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 1, result: {} },
    ];
    for (const value of unsure) assert.equal(isPlainRequest(value), false, JSON.stringify(value));
  });
});

describe('toServerMessage', () => {
  it('reads a plain answer as the schema does', () => {
    assert.deepEqual(toServerMessage({ jsonrpc: '2.0', id: 'r-1', result: { content: [] } }), { kind: 'response', id: 'r-1', result: { content: [] } });
    assert.deepEqual(toServerMessage({ jsonrpc: '2.0', id: 2, result: {}, error: { code: -1, message: 'no' } }), { kind: 'response', id: 2, error: { code: -1, message: 'no' } });
  });

  it('still refuses what the schema refuses', () => {
    for (const value of [{ jsonrpc: '2.0', id: 'x'.repeat(513), result: {} }, { jsonrpc: '2.0', id: 1, result: [] }, { jsonrpc: '1.0', id: 1, result: {} }, { jsonrpc: '2.0', id: 1, result: null }]) {
      assert.throws(() => toServerMessage(value), /malformed/, JSON.stringify(value).slice(0, 80));
    }
  });
});
