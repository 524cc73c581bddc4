#!/usr/bin/env bash
# Runs the pinned pnpm that scripts/bootstrap.sh installed under .tools/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec "$root/.tools/node_modules/.bin/pnpm" --dir "$root" "$@"
