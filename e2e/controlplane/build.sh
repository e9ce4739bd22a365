#!/usr/bin/env bash
# Builds the real control plane the end-to-end tests run against: kube-apiserver and
# kube-controller-manager from k8s.io/kubernetes, and etcd from its server module, each
# pinned by the small module beside this script. The binaries are built once into the
# user cache folder, keyed by version, and reused afterwards; a cold build takes about
# fifteen minutes on two cores. Prints the folder holding the binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$here/kube/go.mod")
etcd=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" { print $3 }' "$here/etcd/go.mod")
[ -n "$k8s" ] && [ -n "$etcd" ] || { echo "cannot read the pinned versions" >&2; exit 1; }
dir="${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/control-plane/kubernetes-$k8s-etcd-$etcd-$(go env GOOS)-$(go env GOARCH)"

if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kube-controller-manager" ] && [ -x "$dir/etcd" ]; then
  echo "$dir"
  exit 0
fi
tmp="$dir.partial.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "building kube-apiserver and kube-controller-manager $k8s, etcd $etcd into $dir (once)" >&2
(cd "$here/kube" && go build -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
(cd "$here/etcd" && go build -o "$tmp/etcd" .)
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
