/**
 * The floor of one Node.js proxy hop, for comparison with the router: node:http in front, one keep-alive
 * undici pool upstream, the JSON-RPC body parsed and the tool name rewritten (the least a router must do),
 * the answer piped back unchanged. No sessions of its own, no balancing, no breakers, no resume ticket:
 * what the router's CPU per call costs over this row is what its features cost. Run as its own process
 * with the upstream MCP URL as its argument; prints its URL.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

const upstream = new URL(process.argv[2] ?? '');
const prefix = process.argv[3] ?? '';
const pool = new Pool(upstream.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

/** The request headers the upstream must see (the rest are hop-by-hop or the client's own). */
const FORWARDED = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body = req.method === 'POST' ? await readBody(req) : undefined;
  if (body !== undefined && prefix) {
    const message = JSON.parse(body) as { method?: string; params?: { name?: string } };
    if (message.method === 'tools/call' && message.params?.name?.startsWith(prefix)) {
      message.params.name = message.params.name.slice(prefix.length);
      body = JSON.stringify(message);
    }
  }
  const headers: Record<string, string> = {};
  for (const name of FORWARDED) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const answer = await pool.request({ method: req.method as 'POST', path: upstream.pathname, headers, body });
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(answer.headers)) if (typeof value === 'string' && name !== 'transfer-encoding' && name !== 'connection' && name !== 'keep-alive') out[name] = value;
  res.writeHead(answer.statusCode, out);
  answer.body.on('data', (c: Buffer) => res.write(c));
  answer.body.on('end', () => res.end());
  answer.body.on('error', () => res.destroy());
}

const http = createServer((req, res) => void handle(req, res).catch(() => res.headersSent ? res.destroy() : res.writeHead(502).end()));
http.keepAliveTimeout = 60_000;
http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  if (address && typeof address === 'object') process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}/mcp` })}\n`);
});
process.on('SIGTERM', () => http.close(() => process.exit(0)));
