//go:build tools

// Package etcd pins the etcd release the tests' kube-apiserver stores its data in.
package etcd

import _ "go.etcd.io/etcd/server/v3"
