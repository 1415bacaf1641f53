"""ClusterView: the one interface through which rules ask about the cluster.

Defined here, in the pure core, so that rules never import the cache or the kubernetes client.
``webhook.cluster`` holds the implementations (static files, live watches).
"""

from __future__ import annotations

from typing import Protocol


class ClusterView(Protocol):
    @property
    def known(self) -> bool:
        """False when nothing is known of the cluster: cluster-aware rules then stay silent."""
        ...


class UnknownCluster:
    """The view when no cluster state was given."""

    @property
    def known(self) -> bool:
        return False


UNKNOWN_CLUSTER = UnknownCluster()
