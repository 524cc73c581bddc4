/**
 * Hosts the conformance fixture directly (no agent, no router) and prints its URL, for running the suite
 * against the fixture by hand:
 *
 *   node --import tsx test/conformance/directHost.ts [--port 8080]
 *   bash scripts/conformance.sh --url http://127.0.0.1:8080/mcp
 *
 * With `--run`, it runs every server scenario (`--suite all`) against itself and exits with the suite's status.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startConformanceHost } from '../../packages/examples/src/conformanceHost.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, run: { type: 'boolean', default: false } },
});
const host = await startConformanceHost({ port: Number(values.port) });
process.stdout.write(`${JSON.stringify({ msg: 'conformance fixture ready', url: host.url })}\n`);

if (values.run) {
  const script = fileURLToPath(new URL('../../scripts/conformance.sh', import.meta.url));
  const child = spawn('bash', [script, '--url', host.url, '--suite', 'all'], { stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  await host.close();
  process.exit(code);
} else {
  const stop = (): void => void host.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
