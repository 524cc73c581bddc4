import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (installed by scripts/bootstrap.sh); `FLOTILLA_CHROMIUM` points elsewhere. */
export const CHROMIUM_PATH = process.env.FLOTILLA_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags for a headless Chromium on a machine with no network but loopback: without the background
 * networking ones, Chromium keeps trying to reach Google's hosts at every start. (playwright-core gives
 * every launch a new empty profile of its own.)
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches the system Chromium through playwright-core (which never downloads a browser of its own). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: run scripts/bootstrap.sh (installs Debian's chromium), or set FLOTILLA_CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
