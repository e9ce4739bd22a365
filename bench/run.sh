#!/usr/bin/env bash
# Switchyard against its peers on loopback: the backend direct, an L4 relay floor,
# Switchyard, nginx, HAProxy and Caddy in front of the same fast backend, measured
# with wrk, h2load and an open-loop generator in alternating rounds (see
# bench/compare/README.md). Installs what it lacks from Debian's packages first.
# Numbers are reported, never asserted.
#
# Environment:
#   BENCH_QUICK=1   a run of about three minutes for trying the suite; it prints the
#                   report and writes no file unless BENCH_OUT is set
#   BENCH_OUT=FILE  where the Markdown report goes (default for a full run:
#                   bench/results/comparison.md)
# Arguments are passed on to `go run ./bench/compare` (for example
# -scenarios reference,pinned or -rounds 7).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# nginx, haproxy and taskset live in the sbin folders, which a user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# The programs the suite runs, with their Debian packages.
. "$here/install.sh"
install_missing wrk=wrk h2load=nghttp2-client nginx=nginx haproxy=haproxy caddy=caddy taskset=util-linux

cd "$root"
# Always rebuilt (Go rebuilds only what changed): a binary left from an earlier
# commit would be measured in place of the code at hand.
make build >/dev/null
args=(-switchyard "$root/bin/switchyard")
invoked="make bench"
if [ "${BENCH_QUICK:-}" = 1 ]; then
  args+=(-quick)
  invoked="BENCH_QUICK=1 make bench"
elif [ -z "${BENCH_OUT:-}" ]; then
  BENCH_OUT="$here/results/comparison.md"
fi
if [ -n "${BENCH_OUT:-}" ]; then
  args+=(-out "$BENCH_OUT")
fi
if [ $# -gt 0 ]; then
  invoked="$invoked (bench/run.sh $*)"
fi
exec go run ./bench/compare "${args[@]}" -invoked-as "$invoked" "$@"
