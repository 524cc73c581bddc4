/**
 * Runs the official MCP conformance suite (through scripts/conformance.sh) against a URL and reads back a
 * per-scenario verdict, plus the baseline of scenarios expected to fail and the comparison of the two.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** scripts/conformance.sh: installs the pinned Node 22 + suite under .tools/conformance and runs it. */
export const CONFORMANCE_SCRIPT = fileURLToPath(new URL('../../scripts/conformance.sh', import.meta.url));
/** The baseline of scenarios that cannot pass through the router, with the reason. */
export const BASELINE_FILE = fileURLToPath(new URL('./baseline.json', import.meta.url));

/**
 * One check the suite recorded (its checks.json entries have more fields; these are the ones read here).
 * `status` is SUCCESS | FAILURE | WARNING | INFO (| SKIPPED); only FAILURE fails a scenario.
 */
export interface Check {
  id: string;
  name: string;
  status: string;
  description?: string;
  errorMessage?: string;
  details?: unknown;
}

// test/ has no dependencies of its own (zod lives in the packages), so the two files read here are
// validated by these small guards instead.
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const optionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';

function parseChecks(json: unknown): Check[] {
  if (!Array.isArray(json)) throw new Error('checks.json is not an array');
  return json.map((c, i) => {
    if (!isRecord(c) || typeof c.id !== 'string' || typeof c.name !== 'string' || typeof c.status !== 'string'
      || !optionalString(c.description) || !optionalString(c.errorMessage)) {
      throw new Error(`checks.json entry ${i} is not a check`);
    }
    return c as unknown as Check;
  });
}

/** The verdict on one scenario. */
export interface ScenarioResult {
  scenario: string;
  /** True when no check failed (warnings do not fail a scenario, as in the suite's own summary). */
  passed: boolean;
  /** The checks from checks.json; empty when the scenario crashed before writing it. */
  checks: Check[];
}

/** What one suite run produced. */
export interface SuiteRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Where the suite wrote its per-scenario checks.json files. */
  outputDir: string;
  results: Map<string, ScenarioResult>;
}

/** Exit status scripts/conformance.sh uses when it cannot install the suite. */
export const INSTALL_FAILED_EXIT = 3;

// Terminal colour codes, which the suite prints even into a pipe.
const ANSI = /\u001b\[[0-9;]*m/g;

function runScript(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [CONFORMANCE_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (process.env.FLOTILLA_TEST_VERBOSE) process.stderr.write(`[conformance!] ${d.toString()}`);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`conformance suite did not finish within ${timeoutMs} ms; stdout tail: ${stdout.slice(-3000)}`));
    }, timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? (signal ? 128 : 1), stdout: stdout.replace(ANSI, ''), stderr: stderr.replace(ANSI, '') });
    });
  });
}

/**
 * The per-scenario verdicts the suite prints: summary lines like "✓ tools-list: 1 passed, 0 failed" after a
 * suite run, or, for a `--scenario <name>` run (which prints no summary), its "Passed: x/y, n failed" line.
 */
export function parseSummary(stdout: string, args: string[] = []): Map<string, ScenarioResult> {
  const results = new Map<string, ScenarioResult>();
  for (const m of stdout.matchAll(/^[✓✗] (\S+): (\d+) passed, (\d+) failed$/gmu)) {
    const [, scenario, , failed] = m;
    if (scenario !== undefined) results.set(scenario, { scenario, passed: failed === '0', checks: [] });
  }
  const single = args.indexOf('--scenario');
  const singleName = single >= 0 ? args[single + 1] : undefined;
  if (singleName !== undefined && !results.has(singleName)) {
    const m = /^Passed: \d+\/\d+, (\d+) failed/m.exec(stdout);
    if (m) results.set(singleName, { scenario: singleName, passed: m[1] === '0', checks: [] });
  }
  return results;
}

/** Installs the pinned suite (idempotent); resolves with the script's exit code and output. */
export function installSuite(timeoutMs = 180_000): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return runScript(['--install-only'], timeoutMs);
}

/**
 * Runs the suite against `url` (the active server suite unless `extraArgs` say otherwise) and returns a
 * verdict per scenario. The verdict comes from the summary the suite prints (it also covers scenarios that
 * crashed); the checks come from the checks.json files written with `-o`.
 */
export async function runSuite(url: string, extraArgs: string[] = [], timeoutMs = 240_000, env: NodeJS.ProcessEnv = {}): Promise<SuiteRun> {
  const outputDir = await mkdtemp(join(tmpdir(), 'flotilla-conformance-'));
  const run = await runScript(['--url', url, '-o', outputDir, ...extraArgs], timeoutMs, env);

  const results = parseSummary(run.stdout, extraArgs);
  // Directories are named server-<scenario>-<ISO timestamp with : and . replaced by ->.
  for (const entry of await readdir(outputDir, { withFileTypes: true })) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/.exec(entry.name);
    if (!entry.isDirectory() || !m?.[1]) continue;
    const scenario = m[1];
    let checks: Check[] = [];
    try {
      checks = parseChecks(JSON.parse(await readFile(join(outputDir, entry.name, 'checks.json'), 'utf8')));
    } catch {
      // No checks.json: the scenario threw before recording any; the summary line already says it failed.
    }
    const known = results.get(scenario);
    const passed = known?.passed ?? !checks.some((c) => c.status === 'FAILURE');
    results.set(scenario, { scenario, passed: passed && !checks.some((c) => c.status === 'FAILURE'), checks });
  }
  return { ...run, outputDir, results };
}

/** One baselined scenario: it is expected to fail through the router, for `reason`. */
export interface BaselineEntry {
  expected: 'fail';
  reason: string;
  /** Which component would have to change for the scenario to pass. */
  component?: string;
}

/** The contents of baseline.json. */
export interface Baseline {
  $comment?: string;
  /** The suite package and version the baseline was recorded with. */
  suite: string;
  scenarios: Record<string, BaselineEntry>;
}

function parseBaseline(json: unknown): Baseline {
  if (!isRecord(json) || typeof json.suite !== 'string' || !optionalString(json.$comment) || !isRecord(json.scenarios)) {
    throw new Error('baseline.json: expected { suite: string, scenarios: { <scenario>: {...} } }');
  }
  for (const [name, e] of Object.entries(json.scenarios)) {
    if (!isRecord(e) || e.expected !== 'fail' || typeof e.reason !== 'string' || e.reason.length < 10 || !optionalString(e.component)) {
      throw new Error(`baseline.json: scenario ${name} needs { expected: "fail", reason: "<why>" [, component] }`);
    }
  }
  return json as unknown as Baseline;
}

/** Reads and validates baseline.json. */
export async function readBaseline(file = BASELINE_FILE): Promise<Baseline> {
  return parseBaseline(JSON.parse(await readFile(file, 'utf8')));
}

/** The difference between a run and the baseline; both lists empty means the run matches. */
export interface BaselineComparison {
  /** Failed, and not in the baseline: a regression (or a new scenario). */
  unexpectedFailures: ScenarioResult[];
  /** In the baseline, but passed: the baseline must shrink. */
  unexpectedPasses: string[];
  /** In the baseline, and did not run at all (renamed or dropped from the suite). */
  missing: string[];
}

/** Compares a run with the baseline. */
export function compareWithBaseline(results: Map<string, ScenarioResult>, baseline: Baseline): BaselineComparison {
  const expected = new Set(Object.keys(baseline.scenarios));
  const unexpectedFailures = [...results.values()].filter((r) => !r.passed && !expected.has(r.scenario));
  const unexpectedPasses = [...expected].filter((s) => results.get(s)?.passed === true);
  const missing = [...expected].filter((s) => !results.has(s));
  return { unexpectedFailures, unexpectedPasses, missing };
}

/** A readable account of a scenario's failed checks, with the suite's error messages. */
export function describeFailure(result: ScenarioResult): string {
  const failed = result.checks.filter((c) => c.status === 'FAILURE');
  if (failed.length === 0) return `${result.scenario}: failed (no checks recorded; see the suite's stdout)`;
  return `${result.scenario}:\n${failed.map((c) => `    - ${c.name}: ${c.errorMessage ?? c.description ?? 'failed'}`).join('\n')}`;
}
