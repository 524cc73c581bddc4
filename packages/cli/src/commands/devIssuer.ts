import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { z } from 'zod';
import { parsePort, parsePositiveInt } from '../options.js';

const TokenRequestSchema = z.object({
  sub: z.string().min(1).max(256),
  aud: z.string().min(1).max(1024).optional(),
  scope: z.string().max(1024).optional(),
  role: z.array(z.string().min(1).max(256)).max(32).default([]),
  ttl: z.coerce.number().int().positive().max(86_400).optional(),
});

/**
 * `flotilla dev-issuer`: a throwaway OAuth issuer for trying the router's JWT auth on one machine. It
 * makes an ES256 key pair in memory (jose), serves its JWKS and RFC 8414 metadata, and mints access
 * tokens for anyone who asks at `POST /token` (form fields `sub`, `role`, `scope`, `aud`, `ttl`): no
 * client authentication at all, so it listens on loopback only. Never for production; use your
 * authorization server there.
 */
export function devIssuerCommand(): Command {
  return new Command('dev-issuer')
    .description('a local, throwaway OAuth issuer (loopback only, no client auth): JWKS at /jwks.json, tokens at POST /token')
    .option('--port <port>', 'port (0 = any free)', parsePort, 9400)
    .option('--audience <aud>', 'default audience of minted tokens', 'http://127.0.0.1:8080/mcp')
    .option('--ttl <seconds>', 'default token lifetime', parsePositiveInt, 3600)
    .action(async (o: { port: number; audience: string; ttl: number }) => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const kid = `dev-${Date.now().toString(36)}`;
      const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
      let issuer = '';
      const server = createServer((req, res) => {
        const send = (status: number, body: unknown, type = 'application/json'): void => {
          res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
          res.end(typeof body === 'string' ? body : JSON.stringify(body));
        };
        const path = (req.url ?? '/').split('?')[0];
        if (req.method === 'GET' && path === '/jwks.json') return send(200, { keys: [jwk] });
        if (req.method === 'GET' && path === '/.well-known/oauth-authorization-server') {
          return send(200, { issuer, jwks_uri: `${issuer}/jwks.json`, token_endpoint: `${issuer}/token`, response_types_supported: [], grant_types_supported: ['client_credentials'] });
        }
        if (req.method === 'POST' && path === '/token') {
          void readForm(req).then(async (form) => {
            const parsed = TokenRequestSchema.safeParse({ sub: form.get('sub') ?? undefined, aud: form.get('aud') ?? undefined, scope: form.get('scope') ?? undefined, role: form.getAll('role'), ttl: form.get('ttl') ?? undefined });
            if (!parsed.success) return send(400, { error: 'invalid_request', error_description: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
            const t = parsed.data;
            const now = Math.floor(Date.now() / 1000);
            const token = await new SignJWT({ ...(t.scope ? { scope: t.scope } : {}), ...(t.role.length ? { roles: t.role } : {}) })
              .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
              .setIssuer(issuer)
              .setSubject(t.sub)
              .setAudience(t.aud ?? o.audience)
              .setIssuedAt(now)
              .setExpirationTime(now + (t.ttl ?? o.ttl))
              .sign(privateKey);
            send(200, token, 'text/plain');
          }, () => send(400, { error: 'invalid_request' }));
          return;
        }
        send(404, { error: 'not found', endpoints: ['/jwks.json', '/.well-known/oauth-authorization-server', 'POST /token'] });
      });
      await new Promise<void>((resolve) => server.listen(o.port, '127.0.0.1', resolve));
      issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), msg: 'dev issuer ready', issuer, jwksUrl: `${issuer}/jwks.json`, tokenUrl: `${issuer}/token`, audience: o.audience })}\n`);
      const stop = (): void => void server.close(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 8192) throw new Error('too large');
  }
  return new URLSearchParams(body);
}
