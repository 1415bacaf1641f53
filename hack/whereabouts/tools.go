//go:build tools

// Package whereabouts pins the whereabouts IPAM plugin v0.9.4, which the differential tests build and
// run for real (its cmd package is the CNI plugin binary; cmd/nodeslicecontroller the controller that
// node_slice_size needs).
package whereabouts

import (
	_ "github.com/k8snetworkplumbingwg/whereabouts/cmd"
	_ "github.com/k8snetworkplumbingwg/whereabouts/cmd/nodeslicecontroller"
)
