/**
 * A POST's stream sends its response headers and its priming event in one write, before the request runs
 * on: a replica killed at any instant has either sent nothing (a load balancer may then send the request
 * to another replica) or sent the event id the client resumes from. A client that saw headers and no
 * priming event could not resume, and its call would wait for the client's own timeout.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const FIXTURE = fileURLToPath(new URL('./fixtures/primeThenDie.ts', import.meta.url));

/** Everything a raw TCP client received for one POST before the server process died. */
async function bytesBeforeDeath(): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(chunk.toString().trim());
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  socket.on('error', () => {});
  socket.write('POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}');
  await once(child, 'exit');
  await new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  return received;
}

describe('a primed stream of a replica killed at once', () => {
  it('has sent its headers together with the priming event', async () => {
    for (let i = 0; i < 5; i++) {
      const received = await bytesBeforeDeath();
      assert.match(received, /^HTTP\/1\.1 200/, 'the headers went out before the process died');
      assert.match(received, /content-type: text\/event-stream/i);
      assert.match(received, /id: 0~t\.ticket\ndata: \n\n/, `the priming event went out with them: ${JSON.stringify(received)}`);
    }
  });
});
