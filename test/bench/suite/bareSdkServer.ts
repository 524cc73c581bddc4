/**
 * The floor the mesh is measured against: a bare SDK `McpServer` with one `echo` tool (the `sdkEcho`
 * example, which an agent hosts too) over stateful Streamable HTTP on plain node:http, no mesh in between.
 * Run as its own process; prints its URL.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import createSdkEcho from '../../../packages/examples/src/sdkEcho.js';

const transports = new Map<string, StreamableHTTPServerTransport>();

function newSession(): StreamableHTTPServerTransport {
  const server = createSdkEcho();
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => void transports.set(id, transport),
  });
  transport.onclose = () => {
    if (transport.sessionId) transports.delete(transport.sessionId);
  };
  void server.connect(transport);
  return transport;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const id = req.headers['mcp-session-id'];
  const known = typeof id === 'string' ? transports.get(id) : undefined;
  if (typeof id === 'string' && !known) {
    res.writeHead(404).end();
    return;
  }
  await (known ?? newSession()).handleRequest(req, res);
}

const http = createServer((req, res) => void handle(req, res).catch(() => res.writeHead(500).end()));
http.keepAliveTimeout = 60_000;
http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  if (address && typeof address === 'object') process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}/mcp` })}\n`);
});
process.on('SIGTERM', () => http.close(() => process.exit(0)));
