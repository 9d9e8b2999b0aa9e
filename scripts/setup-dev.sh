#!/usr/bin/env bash
# Sets up a development machine (Debian, as root): services, pgvector, the venv.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# -- services -----------------------------------------------------------------
ensure_apt() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null \
  || ! command -v curl >/dev/null; then
  ensure_apt postgresql-15 redis-server curl
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect 15 main start || true
fi
for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { log "PostgreSQL did not start"; exit 1; }

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
for _ in $(seq 1 100); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { log "Redis did not start"; exit 1; }

bash scripts/install-pgvector.sh
psql -q -h 127.0.0.1 -U postgres -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'test'" \
  | grep -q 1 || psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test"
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null

# -- Python -------------------------------------------------------------------
if ! python3 -m venv --help >/dev/null 2>&1; then ensure_apt python3-venv; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# Reinstall only when a requirement or package definition changed.
stamp=$(cat requirements-dev.txt packages/*/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.semcache-installed 2>/dev/null)" != "$stamp" ]; then
  log "installing Python packages into .venv"
  # The CPU build of torch first: otherwise a dependency pulls a multi-GB CUDA build.
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -r requirements-dev.txt
  echo "$stamp" > .venv/.semcache-installed
fi
