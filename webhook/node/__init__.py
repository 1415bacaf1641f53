"""What multus-webhook puts on (and takes off) a node's filesystem: the CNI plugin installer, the
cleanup of uninstall mode and the Multus daemon configuration.

Every function takes the host's root directory as a parameter (``/host`` in a pod, a temporary
directory in tests), so that the same code runs on a node and against a stand-in filesystem.
"""
