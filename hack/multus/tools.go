//go:build tools

// Package multus pins Multus v4.3.0, whose annotation parser and delegate merge the differential
// tests run for real (./multus-delegates).
package multus

import (
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus"
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/k8sclient"
)
