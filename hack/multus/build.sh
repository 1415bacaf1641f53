#!/usr/bin/env bash
# Builds multus-delegates (./multus-delegates), which runs a pod's networks annotation and its NADs
# (read from the kube-apiserver a kubeconfig names) through the real Multus v4.3.0 parser and delegate
# merge, multus-write-config (./multus-write-config), which writes 00-multus.conf with the daemon's
# own config manager, and Multus's own install_multus (what its image's init container runs), into a
# cache outside the checkout and prints the directory that holds them. Built again when what it is
# built from changes (../gobuild.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../gobuild.sh"
version=v4.3.0

cache=${XDG_CACHE_HOME:-$HOME/.cache}/multus-webhook/multus/$version
mkdir -p "$cache"
go_build_cached "$cache" "$here" multus-delegates ./multus-delegates "" "$here"/multus-delegates/*.go
go_build_cached "$cache" "$here" multus-write-config ./multus-write-config "" "$here"/multus-write-config/*.go
# What the Multus DaemonSet's install-multus-binary init container runs (tests/differential).
go_build_cached "$cache" "$here" install_multus gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/install_multus ""
# The thin plugin: a CNI ADD and DEL through Multus itself, whose cache of each sandbox's delegates
# the uninstall cleanup reads (tests/differential).
go_build_cached "$cache" "$here" multus gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus ""
# The thick plugin's shim: its DEL without a daemon to reach (tests/differential).
go_build_cached "$cache" "$here" multus-shim gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus-shim ""
echo "$cache"
