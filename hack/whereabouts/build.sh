#!/usr/bin/env bash
# Builds the whereabouts IPAM plugin v0.9.4 (./whereabouts, a CNI plugin binary) and its node-slice
# controller (./nodeslicecontroller, which node_slice_size needs) from the Go module proxy into a cache
# outside the checkout and prints the directory that holds them. Next to it, in crds/,
# go the module's own CustomResourceDefinitions (doc/crds: IPPool, OverlappingRangeIPReservation,
# NodeSlicePool), which the tests apply to the apiserver whereabouts stores its allocations in. Built
# again when what it is built from changes (../gobuild.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../gobuild.sh"
version=v0.9.4
module=github.com/k8snetworkplumbingwg/whereabouts

cache=${XDG_CACHE_HOME:-$HOME/.cache}/multus-webhook/whereabouts/$version
mkdir -p "$cache"
go_build_cached "$cache" "$here" whereabouts "$module/cmd" ""
go_build_cached "$cache" "$here" nodeslicecontroller "$module/cmd/nodeslicecontroller" ""
if command -v go >/dev/null; then
  # The CRDs of the pinned version, from the module cache (downloaded with the build's dependencies).
  dir=$(cd "$here" && go list -mod=readonly -m -f '{{.Dir}}' "$module")
  mkdir -p "$cache/crds"
  cp -f "$dir"/doc/crds/whereabouts.cni.cncf.io_*.yaml "$cache/crds/"
fi
ls "$cache"/crds/whereabouts.cni.cncf.io_ippools.yaml >/dev/null
echo "$cache"
