#!/usr/bin/env bash
# Sets up .venv, then runs the main job: the semantic-cache reverse proxy on the
# embedded default store with the default embedder (all-MiniLM-L6-v2).
#
#   bash scripts/start.sh                      # proxy + a demo upstream, shows a miss then a hit
#   SEMANTIC_CACHE_PROXY_UPSTREAM=http://127.0.0.1:11434 bash scripts/start.sh   # your upstream
#
# The proxy listens on SEMANTIC_CACHE_PROXY_HOST:SEMANTIC_CACHE_PROXY_PORT (127.0.0.1:8080)
# and runs until interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the proxy on the embedded default needs: no PostgreSQL, pgvector or Redis.
bash scripts/setup-python.sh proxy

host=${SEMANTIC_CACHE_PROXY_HOST:-127.0.0.1}
port=${SEMANTIC_CACHE_PROXY_PORT:-8080}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

wait_for() {  # poll a URL until it answers 200 (up to 120 s: the model loads first)
  for _ in $(seq 1 1200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "start: $1 did not come up" >&2
  return 1
}

if [ -z "${SEMANTIC_CACHE_PROXY_UPSTREAM:-}" ]; then
  # No upstream given: run the small OpenAI-compatible demo upstream (300 ms per answer).
  .venv/bin/python -m semcache_proxy.testing --port 9100 --latency 0.3 &
  pids+=($!)
  export SEMANTIC_CACHE_PROXY_UPSTREAM=http://127.0.0.1:9100
  wait_for http://127.0.0.1:9100/healthz
  demo=1
fi

.venv/bin/python -m semcache_proxy.cli --host "$host" --port "$port" --log-level warning &
pids+=($!)
wait_for "http://$host:$port/readyz"

if [ "${demo:-0}" = 1 ]; then
  ask() {
    echo "\$ curl http://$host:$port/v1/chat/completions -d '{... \"content\": \"$1\"}'"
    curl -sS -o /tmp/semcache-demo.json -D - "http://$host:$port/v1/chat/completions" \
      -H 'Content-Type: application/json' -H 'Authorization: Bearer demo-key' \
      -w 'time: %{time_total}s\n' \
      -d "{\"model\": \"demo\", \"messages\": [{\"role\": \"user\", \"content\": \"$1\"}]}" \
      | grep -iE '^(x-semcache|time)'
    echo
  }
  ask "How do I reset my password?"
  ask "What are the steps to reset my password?"
  ask "How do I delete my account?"
fi
echo "semcache-proxy is serving on http://$host:$port -> $SEMANTIC_CACHE_PROXY_UPSTREAM (Ctrl-C stops it)"
wait "${pids[-1]}"
