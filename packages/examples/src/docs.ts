/**
 * Example server `docs` (SDK `McpServer` per session via the default-exported factory): a resource
 * (`docs://readme`), a resource template (`docs://pages/{name}`, with completion of `name`), a prompt with
 * a completable argument, and a read-only tool listing the pages. Exercises everything but tools through
 * the router.
 */
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** The documentation pages the server knows. */
export const PAGES: Readonly<Record<string, string>> = {
  'getting-started': '# Getting started\n\nRun `flotilla up`, then call `echo_echo` through the router.',
  architecture: '# Architecture\n\nAgents host MCP servers; routers spread calls across them, guided by load reports on NATS.',
  operations: '# Operations\n\n`flotilla nodes` lists the fleet; `flotilla drain <node>` takes a node out gracefully.',
  troubleshooting: '# Troubleshooting\n\nA node that misses heartbeats for 3 s is treated as gone.',
};

const README = '# Flotilla docs\n\nPages: ' + Object.keys(PAGES).join(', ') + '. Read one at docs://pages/{name}.';

function completePageName(prefix: string): string[] {
  return Object.keys(PAGES).filter((name) => name.startsWith(prefix ?? ''));
}

/** Builds one `docs` server (one per MCP session). */
export function createDocsServer(): McpServer {
  const server = new McpServer({ name: 'docs', version: '0.1.0' });

  server.registerResource('readme', 'docs://readme', { title: 'Read me', description: 'What the docs contain', mimeType: 'text/markdown' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/markdown', text: README }],
  }));

  server.registerResource(
    'page',
    new ResourceTemplate('docs://pages/{name}', {
      list: async () => ({
        resources: Object.keys(PAGES).map((name) => ({ uri: `docs://pages/${name}`, name, mimeType: 'text/markdown' })),
      }),
      complete: { name: (value) => completePageName(value) },
    }),
    { title: 'Documentation page', description: 'One page of the docs by name', mimeType: 'text/markdown' },
    async (uri, variables) => {
      const name = String(variables.name);
      const text = PAGES[name];
      if (text === undefined) throw new Error(`no page "${name}"; pages: ${Object.keys(PAGES).join(', ')}`);
      return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text }] };
    },
  );

  server.registerPrompt(
    'summarize',
    {
      title: 'Summarize a page',
      description: 'Asks the model to summarize one documentation page',
      argsSchema: {
        page: completable(z.string().describe('Page name'), (value) => completePageName(value)),
        style: z.string().optional().describe('e.g. "one sentence", "bullet points"'),
      },
    },
    ({ page, style }) => {
      const text = PAGES[page] ?? `(no page "${page}")`;
      return {
        messages: [{ role: 'user', content: { type: 'text', text: `Summarize this page${style ? ` as ${style}` : ''}:\n\n${text}` } }],
      };
    },
  );

  server.registerTool(
    'list_pages',
    {
      title: 'List pages',
      description: 'Names of the documentation pages',
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => ({ content: [{ type: 'text', text: Object.keys(PAGES).join('\n') }] }),
  );

  return server;
}

export default createDocsServer;
