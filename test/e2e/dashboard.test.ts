/**
 * The router's dashboard in a real browser: Debian's Chromium (headless, driven by playwright-core) opens
 * `/dashboard` of a real `flotilla router` with three real `flotilla agent` processes on a real
 * nats-server. The nodes appear (DOM and pixels of a screenshot), calls move the rates, a failed call
 * shows with the trace id the router exported, and a node killed with SIGKILL turns red through the
 * live updates, without a reload. Set FLOTILLA_SCREENSHOT_DIR to keep the screenshots.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { DashboardSnapshotSchema, type DashboardSnapshot } from '../../packages/router/src/ops/dashboard/DashboardSnapshot.js';
import { eventually } from '../harness/eventually.js';
import { FlotillaMesh } from '../harness/FlotillaMesh.js';
import { launchChromium } from '../harness/headlessChromium.js';
import { OtlpTraceReceiver } from '../harness/OtlpTraceReceiver.js';
import { decodePng, distinctColours, pixelAt } from '../harness/pngImage.js';

/** Colours of dashboard.css: the left edge of a node row. */
const EDGE_OK: [number, number, number] = [0x1a, 0x7f, 0x37];
const EDGE_BAD: [number, number, number] = [0xc2, 0x20, 0x2c];

let mesh: FlotillaMesh;
let receiver: OtlpTraceReceiver;
let browser: Browser;
let page: Page;
let screenshots: string;
const keepScreenshots = process.env.FLOTILLA_SCREENSHOT_DIR !== undefined;
const pageErrors: string[] = [];

const dashboardUrl = (): string => mesh.opsUrl('/dashboard');

async function snapshot(): Promise<DashboardSnapshot> {
  const res = await fetch(mesh.opsUrl('/api/v1/dashboard'));
  assert.equal(res.status, 200);
  return DashboardSnapshotSchema.parse(await res.json());
}

/** `data-status` of a node's row on the page, or undefined when it has no row. */
async function rowStatus(p: Page, nodeId: string): Promise<string | undefined> {
  const row = p.locator(`#nodes tr[data-node-id="${nodeId}"]`);
  return (await row.count()) ? ((await row.getAttribute('data-status')) ?? undefined) : undefined;
}

/** The colour of a node row's left edge, read from a screenshot of its first cell. */
async function edgeColour(p: Page, nodeId: string, name: string): Promise<[number, number, number]> {
  // Live updates may replace the cell while it is being captured (when its content changed): try again.
  const png = await eventually(() => p.locator(`#nodes tr[data-node-id="${nodeId}"] td:first-child`).screenshot({ path: join(screenshots, `${name}.png`), timeout: 5000 }));
  const image = decodePng(png);
  return pixelAt(image, 2, Math.floor(image.height / 2));
}

function assertNear(actual: [number, number, number], expected: [number, number, number], what: string): void {
  assert.ok(
    actual.every((v, i) => Math.abs(v - expected[i]!) <= 12),
    `${what}: pixel rgb(${actual.join(', ')}) is not near rgb(${expected.join(', ')})`,
  );
}

/** A screenshot of the whole page, checked to be an actual rendering (not blank), saved under `name`. */
async function fullScreenshot(p: Page, name: string): Promise<void> {
  const path = join(screenshots, `${name}.png`);
  const png = await p.screenshot({ path, fullPage: true });
  const image = decodePng(png);
  assert.ok(image.width >= 1200 && image.height >= 600, `${name}: ${image.width}x${image.height}`);
  assert.ok(distinctColours(image) > 100, `${name}: only ${distinctColours(image)} colours, the page did not render`);
  if (keepScreenshots) process.stderr.write(`screenshot: ${path}\n`);
}

/** Collects a page's uncaught script errors and Content-Security-Policy refusals into `sink`. */
function watchErrors(p: Page, label: string, sink: string[] = pageErrors): void {
  p.on('pageerror', (err) => sink.push(`${label}: ${err.message}`));
  p.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) sink.push(`${label}: ${msg.text()}`);
  });
}

before(async () => {
  screenshots = process.env.FLOTILLA_SCREENSHOT_DIR ?? (await mkdtemp(join(tmpdir(), 'flotilla-dashboard-')));
  await mkdir(screenshots, { recursive: true });
  mesh = await FlotillaMesh.start();
  receiver = await OtlpTraceReceiver.start();
  await mesh.startRouter([], 'router', receiver.exportEnv());
  await mesh.startAgents({
    d1: ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow'],
    d2: ['echo=@flotilla/examples/echo', 'slow=@flotilla/examples/slow'],
    d3: ['echo=@flotilla/examples/echo', 'failing=@flotilla/examples/failing'],
  });
  await eventually(async () => {
    const s = await snapshot();
    assert.deepEqual(s.tools.find((t) => t.name === 'echo_echo')?.replicas.map((r) => r.nodeId), ['d1', 'd2', 'd3']);
    assert.ok(s.tools.some((t) => t.name === 'failing_fail'));
  }, 60_000);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  watchErrors(page, 'live page');
});

after(async () => {
  await browser?.close().catch(() => {});
  await mesh?.stop();
  await receiver?.stop();
  if (!keepScreenshots && screenshots) await rm(screenshots, { recursive: true, force: true });
});

describe('dashboard in headless Chromium', () => {
  it('shows every node healthy, with the fleet summary, over live updates', async () => {
    await page.goto(dashboardUrl());
    await eventually(async () => assert.equal(await page.getAttribute('#live', 'data-state'), 'live'));
    // Rows and summary as one state: on a loaded machine a node may turn degraded for a moment (event-loop
    // lag over 250 ms) between two reads of the page, and the next update shows it.
    await eventually(async () => {
      for (const id of ['d1', 'd2', 'd3']) assert.equal(await rowStatus(page, id), 'healthy', `row of ${id}`);
      assert.equal(await page.textContent('#nodes-value'), '3 / 3');
      assert.equal(await page.getAttribute('#tile-nodes', 'data-level'), 'ok');
      assert.equal(await page.textContent('#ready-value'), 'Ready');
    }, 30_000);
    const s = await snapshot();
    assert.equal(await page.textContent('#tools-value'), String(s.summary.tools));
    // The row has the node's ping data (NATS round trip, uptime: from its heartbeats) and its load.
    await eventually(async () => {
      const d1 = (await snapshot()).nodes.find((n) => n.nodeId === 'd1')!;
      assert.ok(d1.ping && d1.ping.natsRttMs !== null && d1.ping.uptimeS > 0, `d1 ping data: ${JSON.stringify(d1.ping)}`);
      assert.ok(d1.heartbeatAgeS !== null && d1.heartbeatAgeS < 3, `d1 heartbeat age ${d1.heartbeatAgeS}`);
      assert.equal(d1.load?.capacity, 16);
    });
    await eventually(async () => assert.match((await page.textContent('#nodes tr[data-node-id="d1"] td:nth-child(6)')) ?? '', /ms$/));
    assert.deepEqual(await page.locator('#tools tr[data-tool="echo_echo"] .chip').allTextContents(), ['d1', 'd2', 'd3']);

    await fullScreenshot(page, '1-fleet-healthy');
    // A node may turn degraded for a moment on a loaded machine (see above): the next update shows it healthy.
    for (const id of ['d1', 'd2', 'd3']) await eventually(async () => assertNear(await edgeColour(page, id, `1-edge-${id}`), EDGE_OK, `${id} edge`), 30_000);
  });

  it('counts calls and lists a failed call with the trace id the router exported, as text', async () => {
    const client = await mesh.connectClient('dashboard-test');
    for (let i = 0; i < 8; i++) await client.client.callTool({ name: 'echo_echo', arguments: { text: `hi ${i}` } });
    // The error text carries markup: the page must show it as text, not make an element of it.
    const failed = await client.client.callTool({ name: 'failing_fail', arguments: { reason: '<img src=x id=injected> on purpose' } });
    assert.equal(failed.isError, true);
    await assert.rejects(client.client.callTool({ name: 'no_such_tool', arguments: {} }), /Unknown tool/);

    const span = await eventually(() => {
      const found = receiver.spans.find((x) => x.name === 'tools/call failing_fail' && x.resource['service.name'] === 'flotilla-router');
      assert.ok(found, 'the router exported the span of the failed call');
      return found;
    });
    const row = page.locator(`#failures tr[data-trace-id="${span.traceId}"]`);
    await eventually(async () => assert.equal(await row.count(), 1));
    assert.equal(await row.getAttribute('data-outcome'), 'tool_error');
    assert.equal(await row.getAttribute('data-call-id'), span.attributes['flotilla.call_id']);
    const text = (await row.textContent()) ?? '';
    for (const part of ['failing_fail', 'd3', span.traceId, '<img src=x id=injected> on purpose']) assert.ok(text.includes(part), `row shows ${part}: ${text}`);
    assert.equal(await page.locator('#injected').count(), 0, 'markup in an error was not turned into an element');
    await eventually(async () => assert.equal(await page.locator('#failures tr[data-outcome="invalid_request"][data-tool="(unknown)"]').count(), 1));

    // Rates: the router's own answers over the sliding window.
    const s = await snapshot();
    const echo = s.tools.find((t) => t.name === 'echo_echo')!;
    assert.equal(echo.calls, 8);
    assert.ok(echo.callRate > 0);
    assert.equal(echo.errors, 0);
    assert.equal(s.tools.find((t) => t.name === 'failing_fail')!.toolErrors, 1);
    assert.equal(s.summary.calls, 10);
    assert.equal(s.summary.errors, 1, 'the unknown tool is a failed call; the tool error is not');
    await eventually(async () => assert.notEqual(await page.textContent('#tools tr[data-tool="echo_echo"] td:nth-child(3)'), '0'));
    await eventually(async () => assert.notEqual(await page.textContent('#rate-value'), '0'));
    await fullScreenshot(page, '2-calls-and-failures');
  });

  it('turns a node killed with SIGKILL red through live updates, without a reload', async () => {
    await page.evaluate(() => {
      (globalThis as unknown as { sameDocument: boolean }).sameDocument = true;
    });
    const d2 = mesh.agent('d2');
    d2.signal('SIGKILL');
    await d2.exited;
    await eventually(async () => {
      const status = await rowStatus(page, 'd2');
      assert.ok(status === 'unhealthy' || status === 'gone', `d2 is ${status}`);
    }, 15_000);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { sameDocument?: boolean }).sameDocument), true, 'the page was not reloaded');
    await eventually(async () => assert.equal(await page.textContent('#nodes-value'), '2 / 3'));
    assert.equal(await page.getAttribute('#tile-nodes', 'data-level'), 'bad');
    assertNear(await edgeColour(page, 'd2', '3-edge-d2'), EDGE_BAD, 'd2 edge after the kill');
    await eventually(async () => assertNear(await edgeColour(page, 'd1', '3-edge-d1'), EDGE_OK, 'd1 edge after the kill'), 30_000);
    // Once the registry drops it, the row stays as `gone`, saying why, rather than vanishing.
    await eventually(async () => assert.equal(await rowStatus(page, 'd2'), 'gone'), 15_000);
    assert.match((await page.textContent('#nodes tr[data-node-id="d2"] .reasons')) ?? '', /heartbeats stopped/);
    assert.deepEqual(await page.locator('#tools tr[data-tool="echo_echo"] .chip').allTextContents(), ['d1', 'd3']);
    await fullScreenshot(page, '3-node-killed');
  });

  it('falls back to polling where the event stream is unavailable', async () => {
    const polling = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    watchErrors(polling, 'polling page');
    try {
      await polling.addInitScript(() => {
        Object.defineProperty(globalThis, 'EventSource', { value: undefined });
      });
      await polling.goto(dashboardUrl());
      await eventually(async () => assert.match((await polling.textContent('#live-text')) ?? '', /polling/));
      await eventually(async () => assert.equal(await rowStatus(polling, 'd1'), 'healthy'), 15_000);
      const first = await polling.getAttribute('body', 'data-generated-at');
      await eventually(async () => assert.notEqual(await polling.getAttribute('body', 'data-generated-at'), first), 15_000);
    } finally {
      await polling.close();
    }
  });

  it('ran without script errors or Content-Security-Policy violations', async () => {
    // The watch does catch both: on a page of its own whose script ran, an uncaught error and an inline
    // script (which the page's CSP must refuse), both provoked here.
    const probe = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const caught: string[] = [];
    watchErrors(probe, 'probe page', caught);
    try {
      await probe.goto(dashboardUrl());
      await eventually(async () => assert.equal(await rowStatus(probe, 'd1'), 'healthy'), 15_000);
      // Page code, as a string: this project's TypeScript has no DOM types.
      await probe.evaluate(`(() => {
        setTimeout(() => { throw new Error('provoked by the test'); });
        const inline = document.createElement('script');
        inline.textContent = 'globalThis.inlineScriptRan = true;';
        document.head.append(inline);
      })()`);
      await eventually(() => {
        assert.ok(caught.some((e) => e.includes('provoked by the test')), `uncaught error not seen: ${JSON.stringify(caught)}`);
        assert.ok(caught.some((e) => /Content.Security.Policy/i.test(e)), `CSP refusal not seen: ${JSON.stringify(caught)}`);
      });
      assert.equal(await probe.evaluate(() => (globalThis as unknown as { inlineScriptRan?: boolean }).inlineScriptRan), undefined, 'the CSP blocked the inline script');
    } finally {
      await probe.close();
    }
    // And this test's own page, watched like the others, ran its script through live updates without error.
    const fresh = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    watchErrors(fresh, 'fresh page');
    try {
      await fresh.goto(dashboardUrl());
      await eventually(async () => assert.equal(await fresh.getAttribute('#live', 'data-state'), 'live'), 15_000);
      await eventually(async () => assert.equal(await rowStatus(fresh, 'd1'), 'healthy'), 15_000);
      const first = await fresh.getAttribute('body', 'data-generated-at');
      await eventually(async () => assert.notEqual(await fresh.getAttribute('body', 'data-generated-at'), first), 15_000);
    } finally {
      await fresh.close();
    }
    assert.deepEqual(pageErrors, []);
  });
});
