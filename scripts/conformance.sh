#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance) against an MCP server URL.
# The suite needs Node >= 22 while the project runs on Node 20, so a pinned Node 22 (the `node` npm package)
# and the pinned suite are installed side by side under .tools/conformance/ (gitignored), once, from the
# manifest and lockfile in test/conformance/suite/ (`npm ci`: every transitive version is pinned too).
#
#   bash scripts/conformance.sh --url http://127.0.0.1:8080/mcp [other `conformance server` options]
#   bash scripts/conformance.sh --install-only     # just install (e.g. to warm a CI cache)
#
# Extra arguments go to `conformance server` (--scenario, --suite, -o <dir>, --expected-failures ...).
# Exit status is the suite's: 0 when every selected scenario passed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# Keep in step with test/conformance/suite/package.json (and regenerate its lockfile when they change).
NODE_VERSION=22.23.3
CONFORMANCE_VERSION=0.1.16
manifest_dir="$root/test/conformance/suite"
dir="${FLOTILLA_CONFORMANCE_DIR:-$root/.tools/conformance}"
node_bin="$dir/node_modules/node/bin/node"
suite_bin="$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
say() { printf '[conformance] %s\n' "$*" >&2; }

installed_version() { # prints the version in <dir>/node_modules/<pkg>/package.json, or nothing
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/$1/package.json" 2>/dev/null | head -n1
}

needs_install() {
  [ "$(installed_version node)" != "$NODE_VERSION" ] \
    || [ "$(installed_version @modelcontextprotocol/conformance)" != "$CONFORMANCE_VERSION" ] \
    || ! cmp -s "$manifest_dir/package-lock.json" "$dir/package-lock.json" \
    || ! "$node_bin" --version >/dev/null 2>&1
}

mkdir -p "$(dirname "$dir")"
# Two test runs starting at once must not both run `npm ci` into the same directory.
if command -v flock >/dev/null 2>&1; then exec 9>"$dir.lock"; flock 9; fi
if needs_install; then
  say "installing node@$NODE_VERSION and @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into ${dir#"$root"/}"
  mkdir -p "$dir"
  cp "$manifest_dir/package.json" "$manifest_dir/package-lock.json" "$dir/"
  if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$dir/install.log" 2>&1; then
    say "npm could not install the suite (log: $dir/install.log). It needs the npm registry; the last lines were:"
    tail -n 15 "$dir/install.log" >&2 || true
    exit 3
  fi
  # The `node` package fetches its platform binary in a preinstall script; without it there is no runtime.
  if ! "$node_bin" --version >/dev/null 2>&1; then
    say "node@$NODE_VERSION installed but $node_bin does not run (install scripts disabled, or no build for $(uname -sm))."
    say "Set FLOTILLA_CONFORMANCE_DIR to a directory holding node_modules/node and node_modules/@modelcontextprotocol/conformance, or allow npm install scripts."
    exit 3
  fi
fi

exec 9>&- # release the install lock: concurrent suite runs are fine

if [ "${1:-}" = "--install-only" ]; then
  say "ready: $("$node_bin" --version), conformance $CONFORMANCE_VERSION"
  exit 0
fi
exec "$node_bin" "$suite_bin" server "$@"
