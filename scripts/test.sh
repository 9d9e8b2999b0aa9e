#!/usr/bin/env bash
# Sets up everything the test suite needs (PostgreSQL + pgvector, Redis, every workspace
# member and the dev and docs tools), then runs it: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-dev.sh
exec .venv/bin/python -m pytest "$@"
