import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { connectToRouter } from '../routerClient.js';
import { env, parsePositiveInt, parseToolArg } from '../options.js';

/** `flotilla call`: call one tool through the router, with a progress bar and a clean Ctrl-C cancel. */
export function callCommand(): Command {
  return new Command('call')
    .description('call a tool through the router')
    .argument('<tool>', 'namespaced tool name, e.g. echo_echo')
    .option('-a, --arg <key=value>', 'argument (repeatable; JSON values are parsed)', parseToolArg)
    .option('--json-args <json>', 'all arguments as one JSON object')
    .option('--router <url>', 'router MCP URL', env.routerUrl)
    .option('--timeout <ms>', 'give up after this long without progress', parsePositiveInt, 60_000)
    .option('--json', 'print the raw result as JSON')
    .action(async (tool: string, o: { arg?: Record<string, unknown>; jsonArgs?: string; router: string; timeout: number; json?: boolean }) => {
      const args = { ...parseJsonArgs(o.jsonArgs), ...o.arg };
      const client = await connectToRouter(o.router);
      const abort = new AbortController();
      const onSigint = (): void => {
        process.stderr.write('\ncancelling...\n');
        abort.abort(new Error('cancelled by user (Ctrl-C)'));
      };
      process.once('SIGINT', onSigint);
      let bar: SingleBar | undefined;
      let result: CallToolResult;
      try {
        result = (await client.callTool({ name: tool, arguments: args }, CallToolResultSchema, {
          signal: abort.signal,
          timeout: o.timeout,
          resetTimeoutOnProgress: true,
          onprogress: (p) => {
            if (!bar) {
              bar = new SingleBar({ format: ' {bar} {percentage}% | {value}/{total} {message}', stream: process.stderr, hideCursor: true, noTTYOutput: true, notTTYSchedule: 250 }, Presets.shades_classic);
              bar.start(p.total ?? 100, 0, { message: '' });
            }
            if (p.total !== undefined) bar.setTotal(p.total);
            bar.update(p.progress, { message: p.message ?? '' });
          },
        })) as CallToolResult;
      } catch (err) {
        bar?.stop();
        if (abort.signal.aborted) {
          process.stderr.write('call cancelled\n');
          process.exitCode = 130;
        } else {
          process.stderr.write(`call failed: ${(err as Error).message}\n`);
          process.exitCode = 1;
        }
        return;
      } finally {
        process.off('SIGINT', onSigint);
        await client.close().catch(() => {});
      }
      bar?.stop();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        for (const item of result.content) {
          process.stdout.write(item.type === 'text' ? `${item.text}\n` : `[${item.type} content]\n`);
        }
        if (result.structuredContent) process.stdout.write(`${JSON.stringify(result.structuredContent, null, 2)}\n`);
      }
      if (result.isError) process.exitCode = 2;
    });
}

function parseJsonArgs(raw: string | undefined): Record<string, unknown> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Error(`--json-args is not valid JSON: ${(err as Error).message}`);
  }
  const r = z.record(z.string(), z.unknown()).safeParse(parsed);
  if (!r.success) throw new Error('--json-args must be a JSON object');
  return r.data;
}
