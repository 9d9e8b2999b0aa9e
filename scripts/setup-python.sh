#!/usr/bin/env bash
# Creates .venv and installs Python packages into it (Debian, as root).
#
#   bash scripts/setup-python.sh proxy   # what the proxy on the embedded default needs
#                                        # (requirements-proxy.txt): scripts/start.sh
#   bash scripts/setup-python.sh dev     # every workspace member plus the test, lint and
#                                        # docs tools (requirements-dev.txt): scripts/test.sh
#
# Safe to run again: packages are installed only when a requirement or package definition
# changed since the last install of that set. `dev` is a superset of `proxy`, so a current
# `dev` install also satisfies `proxy`; installing a set never uninstalls anything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-lib.sh

mode=${1:?usage: setup-python.sh proxy|dev}
case "$mode" in
  proxy) requirements=requirements-proxy.txt ;;
  dev) requirements=requirements-dev.txt ;;
  *) echo "setup-python.sh: unknown set '$mode' (proxy or dev)" >&2; exit 2 ;;
esac

if ! command -v curl >/dev/null; then ensure_apt curl; fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  ensure_apt python3-venv
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  python3 -m venv .venv
fi

# One fingerprint of every requirement file and package definition; each set keeps its own
# stamp of the fingerprint it was installed at.
stamp=$(cat requirements-proxy.txt requirements-dev.txt packages/*/pyproject.toml | sha256sum | cut -d' ' -f1)
current() { [ "$(cat ".venv/.semcache-installed-$1" 2>/dev/null)" = "$stamp" ]; }

if current "$mode" || { [ "$mode" = proxy ] && current dev; }; then
  exit 0
fi
log "installing Python packages into .venv ($requirements)"
# The CPU build of torch first: otherwise a dependency pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -r "$requirements"
echo "$stamp" > ".venv/.semcache-installed-$mode"
