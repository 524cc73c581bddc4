import { Command } from 'commander';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { connectToRouter } from '../routerClient.js';
import { env } from '../options.js';
import { renderTable } from '../renderTable.js';

/** `flotilla tools`: the merged tool list the router serves. */
export function toolsCommand(): Command {
  return new Command('tools')
    .description('list the tools the router serves (merged from every healthy node)')
    .option('--router <url>', 'router MCP URL', env.routerUrl)
    .option('--json', 'print JSON')
    .action(async (o: { router: string; json?: boolean }) => {
      const client = await connectToRouter(o.router);
      try {
        const tools: Tool[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.listTools(cursor ? { cursor } : {});
          tools.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(tools, null, 2)}\n`);
        } else {
          const hints = (t: Tool): string =>
            [t.annotations?.readOnlyHint ? 'read-only' : '', t.annotations?.idempotentHint ? 'idempotent' : ''].filter(Boolean).join(',') || '-';
          process.stdout.write(renderTable(['TOOL', 'HINTS', 'DESCRIPTION'], tools.map((t) => [t.name, hints(t), (t.description ?? '').split('\n')[0] ?? ''])));
        }
      } finally {
        await client.close();
      }
    });
}
