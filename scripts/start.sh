#!/usr/bin/env bash
# Sets up the project, then runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-dev.sh
exec .venv/bin/semcache demo
