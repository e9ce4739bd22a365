#!/usr/bin/env bash
# Builds the helm CLI the chart tests run (helm lint, helm template) from its Go module
# at a pinned version, once, into the user cache folder keyed by version, and prints
# the path of the binary. `go install pkg@version` builds outside this repository's
# module, so go.mod is not involved. A cold build takes about five minutes on two
# cores.
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
# A release build stamps helm's version and the Kubernetes version of its client
# libraries, which helm lint checks deprecated APIs against and helm template assumes
# by default; without them helm would take itself for Kubernetes 1.20.
moddir=$(cd "$tmp" && GOFLAGS= go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2] }' "$moddir/go.mod")
[ -n "$minor" ] || { echo "cannot read the Kubernetes version of helm $version" >&2; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
done
GOBIN="$tmp" GOFLAGS= CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version" >&2
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/helm"
