"""Node readiness labels, CNI binary labels and pod repair, from the agents' MultusNodeStates; only
the holder of a Lease acts. `multus-webhook serve` runs it on its own cluster store."""
