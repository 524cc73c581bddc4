/**
 * A server's result reaches the client as the server's own text with only the id changed, where that is
 * certain to be the same message; anything else is encoded anew from what the router parsed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerText } from '../src/upstream/ResultText.js';
import { parseServerMessages, type ServerResponseMessage } from '../src/upstream/ServerMessage.js';
import { inProcessMesh } from './fixtures/InProcessMesh.js';
import { rawPost } from './fixtures/mcpClient.js';

const BIG = '12345678901234567890';
/** The SDK's own form of an answer: result, jsonrpc, id. */
const sdkForm = (id: string): string => `{"result":{"content":[{"type":"text","text":"exact"}],"big":${BIG}},"jsonrpc":"2.0","id":${JSON.stringify(id)}}`;

/** The client's answer (id 7) to the server's `text` answering router request `id`. */
function answerFor(text: string): string {
  const [message] = parseServerMessages(text) as [ServerResponseMessage];
  return answerText(7, message.result!);
}

describe('answerText', () => {
  it('is the server text with the client id when the id is its last member', () => {
    assert.equal(answerFor(sdkForm('r-1')), sdkForm('r-1').replace('"id":"r-1"}', '"id":7}'));
    assert.equal(answerFor('{"jsonrpc":"2.0","result":{},"id":12}'), '{"jsonrpc":"2.0","result":{},"id":7}');
    // The same id nested in the result is left alone: only the outer object's last member is the id.
    const nested = '{"result":{"x":{"id":"r-1"}},"jsonrpc":"2.0","id":"r-1"}';
    assert.deepEqual(JSON.parse(answerFor(nested)), { jsonrpc: '2.0', id: 7, result: { x: { id: 'r-1' } } });
  });

  it('gives a server that repeats the id no way to answer as another request', () => {
    // Parsed as JSON.parse reads it (the last member counts): the client reads its own id from the answer.
    const answer = answerFor('{"result":{"a":1},"jsonrpc":"2.0","id":"other-9","id":"r-1"}');
    assert.deepEqual(JSON.parse(answer), { jsonrpc: '2.0', id: 7, result: { a: 1 } });
  });

  it('encodes anew whatever it cannot be sure of', () => {
    const anew = (text: string): void => {
      const [message] = parseServerMessages(text) as [ServerResponseMessage];
      assert.equal(answerText(7, message.result!), JSON.stringify({ jsonrpc: '2.0', id: 7, result: message.result }), text);
    };
    anew(`{\n  "result": {"big": ${BIG}},\n  "jsonrpc": "2.0",\n  "id": "r-1"\n}`); // more than one line
    anew('{"result":{},"jsonrpc":"2.0","id":"r-1"}\r'); // a line break at the end
    anew('{"result":{},"jsonrpc":"2.0","id":"r-1"} '); // trailing space
    anew('{"result":{},"jsonrpc":"2.0","id" : "r-1"}'); // the id not in the plain form
    anew('{"jsonrpc":"2.0","id":"r-1","result":{}}'); // the id not last
    anew('{"result":{},"jsonrpc":"2.0","extra":1,"id":"r-1"}'); // a member the answer does not carry
    anew('{"result":{},"jsonrpc":"2.0","__proto__":{},"id":"r-1"}');
    anew('{"result":{"x":{"id":"r\\"1"}},"jsonrpc":"2.0","id":"r\\"1"}'); // an id that needs escapes
  });

  it('matches a result by identity: a copy is encoded anew', () => {
    const [message] = parseServerMessages(sdkForm('r-2')) as [ServerResponseMessage];
    const copy = { ...message.result! };
    assert.equal(answerText(7, copy), JSON.stringify({ jsonrpc: '2.0', id: 7, result: copy }));
  });
});

describe('a server result through the router', () => {
  const mesh = inProcessMesh({ e1: ['echo'] });
  const headers = (): Record<string, string> => ({ 'mcp-session-id': mesh.c.transport.sessionId!, 'mcp-protocol-version': '2025-11-25' });
  const call = (id: number): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo_say', arguments: { text: 'x' } } });
  /** The message lines of an SSE answer. */
  const dataLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => l.slice(6));

  it('reaches the client as the server wrote it, numbers beyond double precision included, on SSE and JSON answers', async () => {
    const node = mesh.node('e1');
    try {
      node.journal.rawAnswer = (id) => ({ contentType: 'text/event-stream', body: `event: message\ndata: ${sdkForm(String(id))}\n\n` });
      const sse = await rawPost(mesh.router.url, call(41), headers());
      assert.deepEqual(dataLines(sse.text), [`{"result":{"content":[{"type":"text","text":"exact"}],"big":${BIG}},"jsonrpc":"2.0","id":41}`]);
      node.journal.rawAnswer = (id) => ({ contentType: 'application/json', body: sdkForm(String(id)) });
      const json = await rawPost(mesh.router.url, call(42), headers());
      assert.deepEqual(dataLines(json.text), [`{"result":{"content":[{"type":"text","text":"exact"}],"big":${BIG}},"jsonrpc":"2.0","id":42}`]);
    } finally {
      node.journal.rawAnswer = undefined;
    }
  });

  it('is encoded anew when it is not one plain line: the client still gets one well-formed event', async () => {
    const node = mesh.node('e1');
    try {
      node.journal.rawAnswer = (id) => ({ contentType: 'application/json', body: `{\n "result": {"big": ${BIG}, "content": []},\n "jsonrpc": "2.0",\n "extra": true,\n "id": ${JSON.stringify(id)}\n}` });
      const r = await rawPost(mesh.router.url, call(43), headers());
      assert.deepEqual(dataLines(r.text), [JSON.stringify({ jsonrpc: '2.0', id: 43, result: { big: Number(BIG), content: [] } })]);
    } finally {
      node.journal.rawAnswer = undefined;
    }
  });
});
