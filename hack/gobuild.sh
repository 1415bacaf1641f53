# Sourced by hack/*/build.sh: go_build_cached, which builds one binary of a Go module into a cache
# directory and builds it again whenever what it is built from changes.

# What is building, removed however the script ends: an interrupted build leaves no half-written file.
_gobuild_tmp=
trap 'rm -rf "$_gobuild_tmp"' EXIT

# go_build_cached CACHE MODULE_DIR BINARY PACKAGE LDFLAGS [SOURCE...]
# CACHE/BINARY from PACKAGE, built in MODULE_DIR. It is built again when its stamp, CACHE/.BINARY.sum,
# differs from the hash of its inputs: the module's go.mod and go.sum (a dependency bumped or
# replaced), the go command line, `go version` (a toolchain with a fixed standard library) and the
# SOURCE files (for a package of the module itself). The cache directory's name holds the versions
# people read; the stamp holds everything else.
go_build_cached() {
  local cache=$1 dir=$2 bin=$3 pkg=$4 ldflags=$5
  shift 5
  # Named here, not left to the go env: VCS stamping (go's default for a main package of the module
  # itself, like multus-add) fails in a checkout owned by another user (git's "dubious ownership");
  # -mod=readonly so that a GOFLAGS=-mod=mod cannot rewrite go.mod and go.sum behind the pins.
  local flags=(-trimpath -buildvcs=false -mod=readonly -ldflags "-s -w $ldflags")
  if ! command -v go >/dev/null; then
    # Nothing to build with: a binary that is there is used as it is.
    [ -x "$cache/$bin" ] && return 0
    echo "no go command to build $bin ($pkg)" >&2
    return 1
  fi
  local sum
  sum=$(cd "$dir" && { cat go.mod go.sum "$@"; echo "CGO_ENABLED=0 go build ${flags[*]} $pkg"; go version; } \
        | sha256sum | cut -d' ' -f1)
  if [ -x "$cache/$bin" ]; then
    if [ ! -e "$cache/.$bin.sum" ]; then
      # Built by a build.sh from before the stamps, which recorded nothing: taken as built from the
      # present inputs, as that script took it, rather than rebuilt (many minutes for the control
      # plane). From here on a change of input is seen.
      echo "$sum" > "$cache/.$bin.sum"
      return 0
    fi
    [ "$(cat "$cache/.$bin.sum")" = "$sum" ] && return 0
  fi
  echo "building $bin ($pkg) into $cache${build_note:-}" >&2
  _gobuild_tmp=$(mktemp -d "$cache/.$bin.XXXXXX")
  (cd "$dir" && CGO_ENABLED=0 go build "${flags[@]}" -o "$_gobuild_tmp/$bin" "$pkg")
  mv -f "$_gobuild_tmp/$bin" "$cache/$bin"
  echo "$sum" > "$cache/.$bin.sum"
  rm -rf "$_gobuild_tmp"
  _gobuild_tmp=
}
