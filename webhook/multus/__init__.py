"""Pure Multus knowledge: the network-selection annotation grammar and profile merging."""
