import type { Logger } from 'fastmcp';

/**
 * A fastmcp logger that writes JSON lines to stderr. fastmcp logs to the console (stdout) by default,
 * which would interleave with the hosting agent's own JSON log lines on stdout.
 */
export function stderrLogger(server: string): Logger {
  const write = (level: string) => (...args: unknown[]): void => {
    const msg = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    process.stderr.write(`${JSON.stringify({ level, name: `fastmcp:${server}`, msg })}\n`);
  };
  const quiet = (): void => {};
  return { debug: quiet, log: quiet, info: write('info'), warn: write('warn'), error: write('error') };
}
