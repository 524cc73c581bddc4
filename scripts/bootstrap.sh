#!/usr/bin/env bash
# Installs what `npm start` / `npm test` need on a fresh machine that has only Node 20 and npm:
# pnpm (a pinned copy under .tools/, no global write needed), the workspace's packages, and
# nats-server (Debian's package) when none is on PATH. `bootstrap.sh test` also installs what the tests
# alone need: Debian's chromium for the dashboard's browser test (playwright-core drives it; it never
# downloads a browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=10.34.9
say() { printf '[bootstrap] %s\n' "$*" >&2; }
for_tests=false
if [ "${1:-}" = "test" ]; then for_tests=true; fi
# playwright-core has no install step today; should a later version grow one, it must not fetch a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

apt_updated=false
# Installs Debian packages as root, or with passwordless sudo; returns 1 when neither is possible or
# apt-get fails (the caller says what to do instead).
apt_install() {
  local sudo=()
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else return 1; fi
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$apt_updated" = false ]; then
    "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || return 1
    apt_updated=true
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

if [ ! -x .tools/node_modules/.bin/pnpm ] || [ "$(.tools/node_modules/.bin/pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION into .tools/ (via npm)"
  npm install --silent --no-audit --no-fund --prefix .tools "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || {
    say "could not install pnpm from the npm registry; check network access to it, or install pnpm $PNPM_VERSION yourself"; exit 1; }
fi

if [ ! -f node_modules/.modules.yaml ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ] || [ package.json -nt node_modules/.modules.yaml ]; then
  say "installing workspace packages"
  if [ -f pnpm-lock.yaml ] && [ "${CI:-}" = "true" ]; then
    bash scripts/pnpm.sh install --frozen-lockfile --reporter=silent
  else
    bash scripts/pnpm.sh install --reporter=silent
  fi
fi

if ! command -v nats-server >/dev/null 2>&1; then
  say "nats-server not found: installing Debian's nats-server package"
  if ! apt_install nats-server; then
    say "could not install nats-server (needs root or passwordless sudo with apt-get)."
    say "Install it ('sudo apt-get install nats-server', or a release from the NATS project), or set NATS_URL to a running nats-server started with -js."
    if [ -z "${NATS_URL:-}" ]; then exit 1; fi
  fi
fi

if [ "$for_tests" = true ]; then
  # The router replica tests put routers behind a real load balancer.
  if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    say "haproxy not found (the router replica tests load-balance routers with it): installing Debian's haproxy package"
    if ! apt_install haproxy; then
      say "could not install haproxy (needs root or passwordless sudo with apt-get). Install it ('sudo apt-get install haproxy')."
      exit 1
    fi
  fi
  chromium_path="${FLOTILLA_CHROMIUM:-/usr/bin/chromium}"
  if [ ! -x "$chromium_path" ]; then
    say "Chromium not found at $chromium_path (the dashboard test drives it headless): installing Debian's chromium package"
    if ! apt_install chromium; then
      say "could not install chromium (needs root or passwordless sudo with apt-get)."
      say "Install it ('sudo apt-get install chromium'), or set FLOTILLA_CHROMIUM to a Chromium or Chrome binary."
      exit 1
    fi
  fi
fi
