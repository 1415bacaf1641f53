#!/usr/bin/env bash
# Builds the CNI reference plugins from the Go module proxy into a cache outside the checkout and
# prints the directory that holds them (usable as CNI_PATH). Next to them goes multus-add
# (./multus-add), which runs a config through libcni as Multus does. Each binary is built again when
# what it is built from changes (../gobuild.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../gobuild.sh"
version=v1.10.0
plugins="bridge macvlan ipvlan vlan host-device ptp dummy tap tuning portmap bandwidth firewall sbr vrf host-local static dhcp"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/multus-webhook/cni-plugins/$version
mkdir -p "$cache"

for name in $plugins; do
  case $name in
    host-local|static|dhcp) pkg=github.com/containernetworking/plugins/plugins/ipam/$name ;;
    tuning|portmap|bandwidth|firewall|sbr|vrf) pkg=github.com/containernetworking/plugins/plugins/meta/$name ;;
    *) pkg=github.com/containernetworking/plugins/plugins/main/$name ;;
  esac
  go_build_cached "$cache" "$here" "$name" "$pkg" ""
done
go_build_cached "$cache" "$here" multus-add ./multus-add "" "$here"/multus-add/*.go
echo "$cache"
