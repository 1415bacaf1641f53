"""A local control plane (real etcd + kube-apiserver, no kubelet) for `make run` and the tests."""
