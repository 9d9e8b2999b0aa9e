#!/usr/bin/env bash
# Starts what the test suite's store tests need (Debian, as root): PostgreSQL 15 with the
# pgvector extension and a `test` database, and Redis. The proxy on the embedded default
# needs none of this (scripts/start.sh does not run it).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-lib.sh

if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null; then
  ensure_apt postgresql-15 redis-server
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
