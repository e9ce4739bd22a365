#!/usr/bin/env bash
# Builds the helm CLI the chart tests run (helm lint, helm template) from its Go module
# at a pinned version, once, into the user cache folder keyed by version, and prints
# the path of the binary. `go install pkg@version` builds outside this repository's
# module, so go.mod is not involved. A cold build takes a few minutes on two cores.
set -euo pipefail
version=v3.22.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/helm/helm-$version-$(go env GOOS)-$(go env GOARCH)"

if [ -x "$dir/helm" ]; then
  echo "$dir/helm"
  exit 0
fi
tmp="$dir.partial.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "building helm $version into $dir (once)" >&2
GOBIN="$tmp" GOFLAGS= go install "helm.sh/helm/v3/cmd/helm@$version" >&2
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/helm"
