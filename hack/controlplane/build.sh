#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kubectl and etcd from the Go module proxy into a cache
# outside the checkout and prints the directory that holds them. Reuses the cache when the binaries
# are there.
# MULTUS_WEBHOOK_CONTROLPLANE_DIR points at existing binaries (e.g. envtest assets) instead; envtest
# has no kube-scheduler, so there it is optional: the tests that need it skip (fail under CI=true).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
k8s_version=v1.37.2
etcd_version=v3.6.16

if [ -n "${MULTUS_WEBHOOK_CONTROLPLANE_DIR:-}" ]; then
  for bin in kube-apiserver etcd kubectl; do
    if [ ! -x "$MULTUS_WEBHOOK_CONTROLPLANE_DIR/$bin" ]; then
      echo "MULTUS_WEBHOOK_CONTROLPLANE_DIR=$MULTUS_WEBHOOK_CONTROLPLANE_DIR has no executable $bin" >&2
      exit 1
    fi
  done
  echo "$MULTUS_WEBHOOK_CONTROLPLANE_DIR"
  exit 0
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/multus-webhook/controlplane/k8s-$k8s_version-etcd-$etcd_version
mkdir -p "$cache"

build() { # build MODULE_DIR BINARY PACKAGE [LDFLAGS]
  local dir=$1 bin=$2 pkg=$3 ldflags=${4:-}
  [ -x "$cache/$bin" ] && return 0
  echo "building $bin ($pkg) into $cache; this takes several minutes the first time" >&2
  # Build to a temporary name and rename, so an interrupted build never leaves a broken binary.
  # -buildvcs=false and -mod=readonly named, not left to the go env: see ../cniplugins/build.sh.
  (cd "$here/$dir" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -mod=readonly -ldflags "-s -w $ldflags" \
     -o "$cache/.$bin.tmp" "$pkg")
  mv -f "$cache/.$bin.tmp" "$cache/$bin"
}

version_flags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
build etcd etcd go.etcd.io/etcd/server/v3
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$version_flags"
build kube kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$version_flags"
build kube kubectl k8s.io/kubernetes/cmd/kubectl "$version_flags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
echo "$cache"
