#!/usr/bin/env node
// `npx flotilla ...` in a checkout (the root package's bin): runs the built CLI. `npm start` and `npm test`
// build it; so does `bash scripts/pnpm.sh build`.
import { existsSync } from 'node:fs';

const cli = new URL('../packages/cli/dist/bin.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('flotilla: not built yet in this checkout; run `npm start`, `npm test` or `bash scripts/pnpm.sh build` first\n');
  process.exit(1);
}
await import(cli.href);
