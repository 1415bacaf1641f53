//go:build tools

// Package kube pins the Kubernetes release whose kube-apiserver, kube-scheduler and kubectl the
// tests run. k8s.io/kubernetes replaces its staging modules with ./staging paths, which only resolve
// inside its own repository; this module points each of them at the published v0.x release instead.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
