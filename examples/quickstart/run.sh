#!/usr/bin/env bash
# Starts the quickstart: two echo backends and the standalone gateway in front of them.
# Stop it with Ctrl-C; the backends stop with it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SWITCHYARD_BIN:-$here/../../bin/switchyard}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

"$bin" echo --listen 127.0.0.1:9081 --pod echo-v1 --namespace default >/dev/null &
pids+=($!)
"$bin" echo --listen 127.0.0.1:9082 --pod echo-v2 --namespace default >/dev/null &
pids+=($!)

cat <<'TXT'
Switchyard quickstart: gateway on http://127.0.0.1:8080, admin API on http://127.0.0.1:9901

Try, in another terminal:
  curl -s http://127.0.0.1:8080/hello                       # 90% echo-v1, 10% echo-v2 ("pod" field)
  curl -s -H 'x-canary: always' http://127.0.0.1:8080/hello  # always echo-v2
  curl -si http://127.0.0.1:8080/old/page                    # 301 to /new/page
  for i in $(seq 100); do curl -s http://127.0.0.1:8080/ | grep -o '"pod": "[^"]*"'; done | sort | uniq -c
  curl -s http://127.0.0.1:9901/api/v1/config                # the configuration in effect
  curl -s http://127.0.0.1:9901/api/v1/status                # object status, as a cluster would show it
Edit examples/quickstart/*.yaml while it runs: changes apply without a restart.
TXT
"$bin" standalone --config "$here" "$@" &
pids+=($!)
wait "${pids[-1]}"
