#!/usr/bin/env bash
# Requests/s and p99 latency through the standalone gateway versus straight to the
# same backend, measured with wrk on loopback in alternating rounds (direct, gateway,
# direct, gateway, ...). Prints medians and their ratio, and writes a Markdown table to
# bench/results/. Numbers are reported, never asserted.
#
# Settings (environment): ROUNDS (5), DURATION (5s), CONNS (32), THREADS (1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
backend_port=$(free_port); gw_port=$(free_port); admin_port=$(free_port)

go build -o "$work/backend" "$here/backend"
[ -x "$root/bin/switchyard" ] || (cd "$root" && make build >/dev/null)
"$work/backend" -listen "127.0.0.1:$backend_port" & pids+=($!)

sed -e "s/@GW_PORT@/$gw_port/g" -e "s/@BACKEND_PORT@/$backend_port/g" "$here/config/one-route.yaml" > "$work/config.yaml"
"$root/bin/switchyard" standalone --config "$work/config.yaml" --admin-addr "127.0.0.1:$admin_port" --log-level warn & pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$gw_port/" >/dev/null || { echo "gateway is not serving" >&2; exit 1; }

# run_wrk URL -> "rps p99_ms"
run_wrk() {
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec:/ { rps=$2 }
    /^ +99%/ { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 }; p99=v }
    END { printf "%s %s\n", rps, p99 }'
}

declare -a d_rps d_p99 g_rps g_p99
for i in $(seq "$ROUNDS"); do
  read -r r p < <(run_wrk "http://127.0.0.1:$backend_port/"); d_rps+=("$r"); d_p99+=("$p")
  read -r r p < <(run_wrk "http://127.0.0.1:$gw_port/"); g_rps+=("$r"); g_p99+=("$p")
  echo "round $i: direct ${d_rps[-1]} req/s p99 ${d_p99[-1]} ms; gateway ${g_rps[-1]} req/s p99 ${g_p99[-1]} ms" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR==1{min=$1} {max=$1} END { print min "-" max }'; }
md_rps=$(median "${d_rps[@]}"); mg_rps=$(median "${g_rps[@]}")
md_p99=$(median "${d_p99[@]}"); mg_p99=$(median "${g_p99[@]}")
ratio_rps=$(awk -v a="$mg_rps" -v b="$md_rps" 'BEGIN { printf "%.3f", a/b }')
ratio_p99=$(awk -v a="$mg_p99" -v b="$md_p99" 'BEGIN { printf "%.3f", a/b }')

out="$here/results/gateway-vs-direct.md"
{
  echo "# Gateway versus direct, one route"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), machine: $(nproc) cores, $(go version | awk '{print $3}')"
  echo "- Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS bench/run.sh\` (wrk -t$THREADS -c$CONNS -d$DURATION, alternating rounds, medians)"
  echo
  echo "| target | req/s (median) | req/s (spread) | p99 ms (median) | p99 ms (spread) |"
  echo "|---|---|---|---|---|"
  echo "| direct | $md_rps | $(spread "${d_rps[@]}") | $md_p99 | $(spread "${d_p99[@]}") |"
  echo "| switchyard | $mg_rps | $(spread "${g_rps[@]}") | $mg_p99 | $(spread "${g_p99[@]}") |"
  echo
  echo "Ratio gateway/direct: req/s **$ratio_rps**, p99 **$ratio_p99**."
} > "$out"
cat "$out"
