#!/usr/bin/env bash
# Builds the CNI reference plugins from the Go module proxy into a cache outside the checkout and
# prints the directory that holds them (usable as CNI_PATH). Reuses the cache when it is complete.
# Next to them goes multus-add (./multus-add), which runs a config through libcni as Multus does; it
# is rebuilt whenever its source or the pinned modules change.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=v1.10.0
plugins="bridge macvlan ipvlan vlan host-device ptp dummy tap tuning portmap bandwidth firewall sbr vrf host-local static"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/multus-webhook/cni-plugins/$version
# Named here, not left to the go env: VCS stamping (go's default for multus-add, a main package of
# this module) fails in a checkout owned by another user (git's "dubious ownership"); -mod=readonly
# so that a GOFLAGS=-mod=mod cannot rewrite go.mod and go.sum behind the pins.
go_flags=(-trimpath -buildvcs=false -mod=readonly -ldflags "-s -w")
mkdir -p "$cache"

for name in $plugins; do
  [ -x "$cache/$name" ] && continue
  case $name in
    host-local|static) pkg=github.com/containernetworking/plugins/plugins/ipam/$name ;;
    tuning|portmap|bandwidth|firewall|sbr|vrf) pkg=github.com/containernetworking/plugins/plugins/meta/$name ;;
    *) pkg=github.com/containernetworking/plugins/plugins/main/$name ;;
  esac
  echo "building $name ($pkg) into $cache" >&2
  # A temporary name and a rename: an interrupted build never leaves a half-written plugin behind.
  (cd "$here" && CGO_ENABLED=0 go build "${go_flags[@]}" -o "$cache/.$name.tmp" "$pkg")
  mv -f "$cache/.$name.tmp" "$cache/$name"
done

sum=$(cd "$here" && cat go.mod go.sum multus-add/*.go | sha256sum | cut -d' ' -f1)
if [ ! -x "$cache/multus-add" ] || [ "$(cat "$cache/.multus-add.sum" 2>/dev/null)" != "$sum" ]; then
  echo "building multus-add into $cache" >&2
  (cd "$here" && CGO_ENABLED=0 go build "${go_flags[@]}" -o "$cache/.multus-add.tmp" ./multus-add)
  mv -f "$cache/.multus-add.tmp" "$cache/multus-add"
  echo "$sum" > "$cache/.multus-add.sum"
fi
echo "$cache"
