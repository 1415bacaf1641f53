"""Node agent: reads the host (CNI binaries and configs, the Multus daemon's socket, the boot id) and
publishes its node's MultusNodeState."""
