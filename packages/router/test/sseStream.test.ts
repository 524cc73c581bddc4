/**
 * A POST stream's response begins in the tick it opens (headers and priming event, nothing left waiting
 * for a later tick: see also primedStream.test.ts), and its last answer goes out with the end of the
 * response.
 */
import assert from 'node:assert/strict';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { SseStream } from '../src/front/mcp/SseStream.js';

/** Serves one request with `handle` and returns the response body the client read. */
async function exchange(handle: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((_req, res) => handle(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise<string>((resolve, reject) => {
      request({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
      })
        .on('error', reject)
        .end();
    });
  } finally {
    server.close();
  }
}

describe('SseStream', () => {
  it('sends the headers and the priming event in the tick that opened the stream, and the last answer with the end', async () => {
    let pendingAfterOpen = -1;
    const body = await exchange((res) => {
      const sse = new SseStream(res, { 'mcp-session-id': 's' }, { id: '0~t.key' });
      pendingAfterOpen = res.socket!.writableLength;
      sse.send('{"jsonrpc":"2.0","id":1,"result":{}}', '1~t.key', true);
    });
    assert.equal(pendingAfterOpen, 0, 'nothing left waiting for a later tick');
    assert.equal(body, 'id: 0~t.key\ndata: \n\nid: 1~t.key\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
  });

  it('without a priming event, still sends the headers at once', async () => {
    let pendingAfterOpen = -1;
    await exchange((res) => {
      const sse = new SseStream(res, {});
      pendingAfterOpen = res.socket!.writableLength;
      sse.end();
    });
    assert.equal(pendingAfterOpen, 0);
  });
});
