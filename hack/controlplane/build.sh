#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kubectl and etcd from the Go module proxy into a cache
# outside the checkout and prints the directory that holds them. Each binary is built again when what
# it is built from changes (../gobuild.sh).
# MULTUS_WEBHOOK_CONTROLPLANE_DIR points at existing binaries (e.g. envtest assets) instead; envtest
# has no kube-scheduler, so there it is optional: the tests that need it skip (fail under CI=true).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../gobuild.sh"
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
build_note="; this takes several minutes the first time"

version_flags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
go_build_cached "$cache" "$here/etcd" etcd go.etcd.io/etcd/server/v3 ""
go_build_cached "$cache" "$here/kube" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$version_flags"
go_build_cached "$cache" "$here/kube" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$version_flags"
go_build_cached "$cache" "$here/kube" kubectl k8s.io/kubernetes/cmd/kubectl \
  "$version_flags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
echo "$cache"
