#!/usr/bin/env bash
# Installs what `npm start` / `npm test` need on a fresh machine that has only Node 20 and npm:
# pnpm (a pinned copy under .tools/, no global write needed), the workspace's packages, and
# nats-server (Debian's package) when none is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=10.34.9
say() { printf '[bootstrap] %s\n' "$*" >&2; }

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
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "nats-server not found: installing Debian's nats-server package"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server) >/dev/null 2>&1 || {
      say "apt-get could not install nats-server. Install it yourself (Debian/Ubuntu: 'sudo apt-get install nats-server'; or see https://docs.nats.io) or point NATS_URL at a running server with JetStream enabled."; exit 1; }
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    say "nats-server not found: installing Debian's nats-server package with sudo"
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server) >/dev/null 2>&1 || {
      say "sudo apt-get could not install nats-server; install it yourself ('apt-get install nats-server')."; exit 1; }
  else
    say "nats-server is not installed and this script cannot install it (needs root/sudo with apt-get)."
    say "Install it ('sudo apt-get install nats-server', or a release from the NATS project), or set NATS_URL to a running nats-server started with -js."
    if [ -z "${NATS_URL:-}" ]; then exit 1; fi
  fi
fi
