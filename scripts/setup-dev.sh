#!/usr/bin/env bash
# Sets up a development machine (Debian, as root): PostgreSQL + pgvector and Redis for the
# store tests, Chromium for the dashboard's browser test, then .venv with every workspace
# member and the test, lint and docs tools.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-lib.sh
bash scripts/setup-services.sh
# Debian's own build; playwright drives it (never `playwright install`: no download).
if ! command -v chromium >/dev/null; then ensure_apt chromium; fi
bash scripts/setup-python.sh dev
