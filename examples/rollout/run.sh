#!/usr/bin/env bash
# Starts the rollout example: the stable and canary echo backends and the standalone
# gateway in front of them, keeping the Rollout's state in a temporary folder (pass
# --state-dir DIR to keep it elsewhere). Stop it with Ctrl-C; the backends stop with it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SWITCHYARD_BIN:-$here/../../bin/switchyard}
state=$(mktemp -d)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$state"; }
trap cleanup EXIT INT TERM

"$bin" echo --listen 127.0.0.1:9181 --pod reviews-v1 --namespace default >/dev/null &
pids+=($!)
"$bin" echo --listen 127.0.0.1:9182 --pod reviews-v2 --namespace default >/dev/null &
pids+=($!)

cat <<'TXT'
Switchyard rollout example: gateway on http://127.0.0.1:8088, admin API on http://127.0.0.1:9901

In another terminal, send traffic and watch the rollout move:
  while true; do curl -s http://127.0.0.1:8088/ >/dev/null; sleep 0.05; done &
  curl -s http://127.0.0.1:9901/api/v1/rollouts             # phase, step, weight, last analysis window
  curl -s -XPOST http://127.0.0.1:9901/api/v1/rollouts/default/reviews/promote      # the 50% step waits for this
  curl -s -XPOST 'http://127.0.0.1:9901/api/v1/rollouts/default/reviews/promote?full=true'
  curl -s -XPOST http://127.0.0.1:9901/api/v1/rollouts/default/reviews/pause        # also resume, abort
  curl -s -H 'x-canary: always' http://127.0.0.1:8088/      # always reviews-v2
Make the canary fail its analysis (every request fails, but only the canary's count):
  while true; do curl -s http://127.0.0.1:8088/status/503 >/dev/null; sleep 0.05; done
Editing rollout.yaml's spec starts the rollout again from its first step.
TXT
"$bin" standalone --config "$here" --state-dir "$state" "$@" &
pids+=($!)
wait "${pids[-1]}"
