#!/usr/bin/env bash
# User-space instructions per request of Switchyard (bare, with its defaults, with
# the policy set), the Go floor, nginx and HAProxy, counted under valgrind's
# callgrind (see bench/compare/README.md). The count hardly depends on other work on
# the machine, so it shows small changes that CPU time on a shared machine hides.
# Installs what it lacks from Debian's packages first. Numbers are reported, never
# asserted.
#
# Environment:
#   BENCH_OUT=FILE  where the Markdown report goes (default:
#                   bench/results/instructions.md)
# Arguments are passed on to `go run ./bench/compare` (for example -rounds 5 or
# -instructions 6000, the requests counted).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
. "$here/install.sh"
install_missing valgrind=valgrind callgrind_control=valgrind h2load=nghttp2-client nginx=nginx haproxy=haproxy

cd "$root"
make build >/dev/null
exec go run ./bench/compare -switchyard "$root/bin/switchyard" -instructions 3000 -rounds 3 \
  -out "${BENCH_OUT:-$here/results/instructions.md}" -invoked-as "make bench-instructions${*:+ (bench/instructions.sh $*)}" "$@"
