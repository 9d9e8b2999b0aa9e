#!/usr/bin/env bash
# Sets up a development machine (Debian, as root): PostgreSQL + pgvector and Redis for the
# store tests, then .venv with every workspace member and the test, lint and docs tools.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-services.sh
bash scripts/setup-python.sh dev
