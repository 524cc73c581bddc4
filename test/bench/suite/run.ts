/**
 * The benchmark suite (`npm run bench`): every figure measured side by side in one run on this machine,
 * printed as tables, written to docs/performance-results.json and into the generated section of
 * docs/performance.md. Absolute numbers move with the machine; the ratios within one run are the result.
 *   - sequential latency: bare SDK server, agent, router → agent;
 *   - a concurrency sweep: calls/s, p99 and the CPU each process spent per call;
 *   - large results: a small request answered with 256 KiB, directly and through the router;
 *   - catalog scale: 100 agents × 50 tools;
 *   - a node's death under load: how long the router still placed calls on it.
 * Usage: node --import tsx test/bench/suite/run.ts [--calls 2000] [--seconds 4] [--rounds 1] [--clients 1,8,32,128] [--agents 100] [--only latency,sweep,large,catalog,death] [--result-bytes 262144] [--profile-router <dir>] [--profile-agent <dir>] [--baseline-router <other build>/packages/cli/dist/bin.js] [--baseline-agent <other build>/packages/cli/dist/bin.js]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchTargets, type BenchTarget } from './BenchTargets.js';
import { catalogScale, type CatalogScaleResult } from './catalogScale.js';
import { mergeRounds, sweepPoint, type SweepPoint } from './concurrencySweep.js';
import { largeResults, type LargeResultPoint } from './largeResults.js';
import { nodeDeath, type NodeDeathResult } from './nodeDeath.js';
import { benchPool } from './RawMcpClient.js';
import { sequentialLatency, type SequentialResult } from './sequentialLatency.js';
import { latencyTable, sweepTable, largeResultsTable, catalogTable, deathTable, type Markdown } from './report.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '1' },
    clients: { type: 'string', default: '1,8,32,128' },
    agents: { type: 'string', default: '100' },
    only: { type: 'string', default: 'latency,sweep,large,catalog,death' },
    'result-bytes': { type: 'string', default: String(256 * 1024) },
    'no-docs': { type: 'boolean', default: false },
    'profile-router': { type: 'string' },
    'baseline-router': { type: 'string' },
    'baseline-agent': { type: 'string' },
    'profile-agent': { type: 'string' },
  },
});
const parts = new Set(values.only.split(','));
const results: { machine: string; at: string; sequential?: SequentialResult; sweep?: SweepPoint[]; large?: LargeResultPoint[]; catalog?: CatalogScaleResult; death?: NodeDeathResult } = {
  machine: `${(await import('node:os')).cpus().length} cores, node ${process.version}`,
  at: new Date().toISOString(),
};
const sections: Markdown[] = [];
/** Keeps a section and prints it at once (a later part failing loses nothing measured). */
function report(section: Markdown): void {
  sections.push(section);
  process.stdout.write(`\n${section.title}\n\n${section.table}\n`);
}

if (parts.has('latency') || parts.has('sweep') || parts.has('large')) {
  const mesh = await BenchTargets.start({ profileDir: values['profile-router'], agentProfileDir: values['profile-agent'], baselineBin: values['baseline-router'], baselineAgentBin: values['baseline-agent'] });
  try {
    const { bare, agentSdk, agent, minimalProxy, router, authRouter, baselineRouter, baselineAgent } = mesh.targets;
    // Each row's overhead is its hop's cost: the agent over the same SDK server bare, the minimal proxy and
    // the router over the agent (fastmcp echo), the front door over the router. A baseline's row sits right
    // after its own build's, so it compares the two builds (and the next row then compares with the baseline).
    const paths = [bare, agentSdk, agent, ...(baselineAgent ? [baselineAgent] : []), minimalProxy, router, ...(baselineRouter ? [baselineRouter] : []), authRouter];
    if (parts.has('latency')) {
      results.sequential = await sequentialLatency(paths, Number(values.calls), Number(values.warmup));
      report(latencyTable(results.sequential, paths));
    }
    if (parts.has('sweep')) {
      results.sweep = [];
      const rounds = Math.max(1, Number(values.rounds));
      for (const clients of values.clients.split(',').map(Number)) {
        // Each round runs every path once at this concurrency; with several rounds they interleave.
        const byPath: SweepPoint[][] = paths.map(() => []);
        for (let round = 0; round < rounds; round++) {
          for (const [i, path] of paths.entries()) {
            const cpuOf: Record<string, number> = path === bare ? { server: bare.pid } : path === agent || path === agentSdk || path === baselineAgent ? { agent: path.pid } : path === minimalProxy ? { proxy: path.pid, agent: agent.pid } : { router: path.pid, agent: agent.pid };
            byPath[i]!.push(await sweepPoint(path, clients, Number(values.seconds), cpuOf));
          }
        }
        for (const points of byPath) results.sweep.push(mergeRounds(points));
      }
      report(sweepTable(results.sweep));
    }
    if (parts.has('large')) {
      // The SDK echo (hosted by the same agent) repeats its text: the routers call it there too.
      const viaSdk = (t: BenchTarget): BenchTarget => ({ ...t, name: `${t.name} (SDK echo)`, tool: 'sdk_echo' });
      const large = [agentSdk, viaSdk(router), ...(baselineRouter ? [viaSdk(baselineRouter)] : [])];
      results.large = await largeResults(large, Number(values['result-bytes']), 300);
      report(largeResultsTable(results.large));
    }
  } finally {
    await mesh.stop();
  }
}
if (parts.has('catalog')) {
  results.catalog = await catalogScale(Number(values.agents));
  report(catalogTable(results.catalog));
}
if (parts.has('death')) {
  results.death = await nodeDeath(16);
  report(deathTable(results.death));
}
await benchPool.close();

if (!values['no-docs']) writeDocs(results, sections);

/** Writes the JSON and replaces the generated section of docs/performance.md. */
function writeDocs(json: unknown, tables: Markdown[]): void {
  const docs = fileURLToPath(new URL('../../../docs/', import.meta.url));
  writeFileSync(`${docs}performance-results.json`, `${JSON.stringify(json, null, 2)}\n`);
  const file = `${docs}performance.md`;
  const begin = '<!-- bench:begin (generated by npm run bench; edits here are overwritten) -->';
  const end = '<!-- bench:end -->';
  const text = readFileSync(file, 'utf8');
  const [head, rest] = [text.slice(0, text.indexOf(begin)), text.slice(text.indexOf(end) + end.length)];
  if (!text.includes(begin) || !text.includes(end)) throw new Error(`docs/performance.md has no ${begin} … ${end} section`);
  const body = tables.map((t) => `#### ${t.title}\n\n${t.table}\n`).join('\n');
  writeFileSync(file, `${head}${begin}\n\n_Measured ${results.at} on ${results.machine}._\n\n${body}\n${end}${rest}`);
}
