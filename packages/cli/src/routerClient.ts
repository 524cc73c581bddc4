import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/**
 * Opens an MCP session with the router for a CLI command. `FLOTILLA_TOKEN` (an OAuth access token or an
 * API key) is sent as `Authorization: Bearer` when set.
 */
export async function connectToRouter(url: string): Promise<Client> {
  const client = new Client({ name: 'flotilla-cli', version: '0.1.0' });
  const token = process.env.FLOTILLA_TOKEN?.trim();
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {}));
  } catch (err) {
    throw new Error(`cannot open an MCP session with the router at ${url} (${(err as Error).message}); set --router or FLOTILLA_ROUTER_URL`);
  }
  return client;
}
