#!/usr/bin/env bash
# Builds the dummy plugin of the CNI plugins (build.sh's version) for the ELF layouts other than the
# build machine's: 32-bit little-endian (386), 32-bit big-endian (mips) and 64-bit big-endian (s390x),
# for tests that read binaries' headers (none of them runs here). Prints the directory that holds one
# directory per GOARCH.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../gobuild.sh"
version=v1.10.0

cache=${XDG_CACHE_HOME:-$HOME/.cache}/multus-webhook/cni-plugins/$version-foreign
for arch in 386 mips s390x; do
  mkdir -p "$cache/$arch"
  # Each GOARCH has a cache directory of its own: the stamp does not hold the environment.
  export GOARCH=$arch
  go_build_cached "$cache/$arch" "$here" dummy github.com/containernetworking/plugins/plugins/main/dummy ""
done
echo "$cache"
