#!/usr/bin/env bash
# The cost of observability on the data path: requests/s and p99 latency through the
# standalone gateway with the least observability the binary has (per-backend request
# metrics: --route-metrics=off) and with all of it (per-route metrics, an access log
# line for every request written to a file, every request traced and its spans
# exported over OTLP/HTTP to a loopback receiver), and all of it with 1% of the
# traces recorded, measured with wrk on loopback in alternating rounds. Prints
# medians and their ratios, and writes a Markdown table to bench/results/. Numbers
# are reported, never asserted.
#
# Settings (environment): ROUNDS (5), DURATION (5s), CONNS (32), THREADS (1), and
# BASELINE, the path of another switchyard binary (one built before observability,
# say) to measure in the same rounds with its default flags.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
BASELINE=${BASELINE:-}

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

work=$(mktemp -d)
# Gateways stop first, and are waited for, so that the last spans find the receiver.
pids=(); gw_pids=()
cleanup() {
  for p in "${gw_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${gw_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

go build -o "$work/backend" "$here/backend"
[ -x "$root/bin/switchyard" ] || (cd "$root" && make build >/dev/null)
backend_port=$(free_port); sink_port=$(free_port)
"$work/backend" -listen "127.0.0.1:$backend_port" & pids+=($!)
# The OTLP receiver: the same server answering with an empty body, which the
# exporter takes as success.
"$work/backend" -listen "127.0.0.1:$sink_port" -size 0 & pids+=($!)

# start_gateway NAME BINARY FLAGS... starts a gateway and sets port_NAME.
start_gateway() {
  local name=$1 bin=$2; shift 2
  local gw_port admin_port
  gw_port=$(free_port); admin_port=$(free_port)
  sed -e "s/@GW_PORT@/$gw_port/g" -e "s/@BACKEND_PORT@/$backend_port/g" "$here/config/one-route.yaml" > "$work/$name.yaml"
  "$bin" standalone --config "$work/$name.yaml" --admin-addr "127.0.0.1:$admin_port" --log-level warn "$@" & gw_pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$gw_port/" >/dev/null || { echo "gateway $name is not serving" >&2; exit 1; }
  printf -v "port_$name" '%s' "$gw_port"
}

targets=(base all sampled)
all_flags=(--route-metrics=full --access-log-sample=1 --otlp-endpoint="http://127.0.0.1:$sink_port/v1/traces")
start_gateway base "$root/bin/switchyard" --route-metrics=off
start_gateway all "$root/bin/switchyard" "${all_flags[@]}" --access-log="$work/all.log" --trace-sample-ratio=1
start_gateway sampled "$root/bin/switchyard" "${all_flags[@]}" --access-log="$work/sampled.log" --trace-sample-ratio=0.01
if [ -n "$BASELINE" ]; then
  start_gateway baseline "$BASELINE"
  targets=(baseline "${targets[@]}")
fi

# run_wrk URL -> "rps p99_ms"
run_wrk() {
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec:/ { rps=$2 }
    /^ +99%/ { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 }; p99=v }
    END { printf "%s %s\n", rps, p99 }'
}

declare -A rps p99
for i in $(seq "$ROUNDS"); do
  line="round $i:"
  for t in "${targets[@]}"; do
    port_var="port_$t"
    read -r r p < <(run_wrk "http://127.0.0.1:${!port_var}/")
    rps[$t]="${rps[$t]:-} $r"; p99[$t]="${p99[$t]:-} $p"
    line="$line $t $r req/s p99 $p ms;"
  done
  echo "$line" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR==1{min=$1} {max=$1} END { print min "-" max }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a/b }'; }
declare -A m_rps m_p99
for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  m_rps[$t]=$(median ${rps[$t]}); m_p99[$t]=$(median ${p99[$t]})
done
lines=$(cat "$work/all.log" "$work/sampled.log" | wc -l)

out="$here/results/observability.md"
{
  echo "# Observability on versus off, one route"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), machine: $(nproc) cores, $(go version | awk '{print $3}')"
  echo "- Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS bench/observe.sh\` (wrk -t$THREADS -c$CONNS -d$DURATION, alternating rounds, medians)"
  echo "- base: \`--route-metrics=off\`; all: \`--route-metrics=full --access-log=FILE --access-log-sample=1 --otlp-endpoint=URL --trace-sample-ratio=1\`; sampled: all with \`--trace-sample-ratio=0.01\` ($lines access log lines written)"
  [ -n "$BASELINE" ] && echo "- baseline: \`$(basename "$BASELINE")\` with its default flags"
  echo
  echo "| gateway | req/s (median) | req/s (spread) | p99 ms (median) | p99 ms (spread) |"
  echo "|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    echo "| $t | ${m_rps[$t]} | $(spread ${rps[$t]}) | ${m_p99[$t]} | $(spread ${p99[$t]}) |"
  done
  echo
  echo "Ratio all/base: req/s **$(ratio "${m_rps[all]}" "${m_rps[base]}")**, p99 **$(ratio "${m_p99[all]}" "${m_p99[base]}")**."
  echo "Ratio sampled/base: req/s **$(ratio "${m_rps[sampled]}" "${m_rps[base]}")**, p99 **$(ratio "${m_p99[sampled]}" "${m_p99[base]}")**."
  if [ -n "$BASELINE" ]; then
    echo "Ratio base/baseline: req/s **$(ratio "${m_rps[base]}" "${m_rps[baseline]}")**, p99 **$(ratio "${m_p99[base]}" "${m_p99[baseline]}")**."
  fi
} > "$out"
cat "$out"
