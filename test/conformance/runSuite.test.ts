/**
 * The baseline logic of the conformance test, on canned suite output: it must flag new failures AND
 * baselined scenarios that pass, so baseline.json can neither hide regressions nor go stale.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { compareWithBaseline, parseSummary, readBaseline, type Baseline } from './runSuite.js';

const SUITE_OUTPUT = `
=== SUMMARY ===
✓ server-initialize: 1 passed, 0 failed
✗ resources-subscribe: 0 passed, 1 failed
✓ server-sse-polling: 0 passed, 0 failed
✗ tools-call-sampling: 0 passed, 1 failed

Total: 1 passed, 2 failed
`;

const baseline = (names: string[]): Baseline => ({
  suite: '@modelcontextprotocol/conformance@0.1.16',
  scenarios: Object.fromEntries(names.map((n) => [n, { expected: 'fail' as const, reason: 'a reason long enough' }])),
});

describe('conformance baseline comparison', () => {
  it('reads verdicts from the summary; a scenario with only warnings passes', () => {
    const results = parseSummary(SUITE_OUTPUT);
    assert.deepEqual(
      [...results.values()].map((r) => [r.scenario, r.passed]),
      [['server-initialize', true], ['resources-subscribe', false], ['server-sse-polling', true], ['tools-call-sampling', false]],
    );
  });

  it('reads the verdict of a single --scenario run', () => {
    const results = parseSummary('Checks:\n...\nTest Results:\nPassed: 0/1, 1 failed, 0 warnings\n', ['--scenario', 'ping']);
    assert.equal(results.get('ping')?.passed, false);
  });

  it('matches when exactly the baselined scenarios fail', () => {
    const diff = compareWithBaseline(parseSummary(SUITE_OUTPUT), baseline(['resources-subscribe', 'tools-call-sampling']));
    assert.deepEqual(diff, { unexpectedFailures: [], unexpectedPasses: [], missing: [] });
  });

  it('flags a failure missing from the baseline', () => {
    const diff = compareWithBaseline(parseSummary(SUITE_OUTPUT), baseline(['resources-subscribe']));
    assert.deepEqual(diff.unexpectedFailures.map((r) => r.scenario), ['tools-call-sampling']);
  });

  it('flags a baselined scenario that passes, and one that did not run', () => {
    const diff = compareWithBaseline(
      parseSummary(SUITE_OUTPUT),
      baseline(['resources-subscribe', 'tools-call-sampling', 'server-initialize', 'no-such-scenario']),
    );
    assert.deepEqual(diff.unexpectedPasses, ['server-initialize']);
    assert.deepEqual(diff.missing, ['no-such-scenario']);
  });

  it('baseline.json is well-formed and recorded with the pinned suite version', async () => {
    const b = await readBaseline();
    const manifest = JSON.parse(await readFile(new URL('./suite/package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const pinned = manifest.dependencies['@modelcontextprotocol/conformance'];
    assert.equal(b.suite, `@modelcontextprotocol/conformance@${pinned}`, 'baseline.json was recorded with another suite version; re-run and update it');
    const script = await readFile(new URL('../../scripts/conformance.sh', import.meta.url), 'utf8');
    assert.match(script, new RegExp(`^CONFORMANCE_VERSION=${pinned}$`, 'm'), 'scripts/conformance.sh pins another suite version than suite/package.json');
    assert.match(script, new RegExp(`^NODE_VERSION=${manifest.dependencies.node}$`, 'm'), 'scripts/conformance.sh pins another Node than suite/package.json');
  });
});
