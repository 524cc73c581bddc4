#!/usr/bin/env bash
# Runs every test: unit tests of each package, then cross-package end-to-end tests, with node's test
# runner (TypeScript through tsx). Extra arguments are passed to `node --test` (e.g. a file list).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(ls packages/*/test/*.test.ts test/*/*.test.ts 2>/dev/null | sort)
fi
# Suites start their own nats-server and processes; two at a time fits a 2-core machine.
exec node --import tsx --test --test-concurrency="${FLOTILLA_TEST_CONCURRENCY:-2}" --test-timeout=300000 "${files[@]}"
