"""A ClusterView read from files: `kubectl get nodes,net-attach-def,pods -A -o yaml` output (a List) or
plain multi-document YAML/JSON of Node, MultusNodeState, NetworkAttachmentDefinition, NetworkProfile,
Pod and ResourceQuota objects. Other kinds are ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.cluster.store import KINDS, NODE_STATE, ClusterStore
from webhook.documents import iter_objects


def object_key(obj: Mapping[str, Any], default_namespace: str = "") -> tuple[str, str, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or default_namespace), str(meta.get("name", "")))


class StaticClusterView(ClusterStore):
    """The cluster as a set of objects; an object with the same kind/namespace/name replaces the
    earlier one, as an UPDATE would. With ``state_namespace`` (the webhook's namespace) a
    MultusNodeState in another namespace is left out, as the live view, which watches only that one,
    never sees it: a `kubectl get ... -A` of a cluster with two installs has both installs' states. One
    with no namespace is kept (a hand-written state)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]] = (), *, default_namespace: str = "default",
                 state_namespace: str | None = None) -> None:
        super().__init__(default_namespace=default_namespace)
        self._known = True
        self.state_namespace = state_namespace
        #: The namespaces of the MultusNodeStates left out, for check to say where the states were.
        self.other_state_namespaces: set[str] = set()
        self.upsert_all((kind, obj) for obj in objects if (kind := self._kind(obj)) is not None)

    @classmethod
    def from_files(cls, paths: list[str], *, default_namespace: str = "default",
                   state_namespace: str | None = None) -> StaticClusterView:
        return cls((doc.obj for doc in iter_objects(paths)), default_namespace=default_namespace,
                   state_namespace=state_namespace)

    def put(self, obj: Mapping[str, Any]) -> None:
        kind = self._kind(obj)
        if kind is not None:
            self.upsert(kind, obj)

    def remove(self, obj: Mapping[str, Any]) -> None:
        kind = self._kind(obj)
        if kind is not None:
            self.delete(kind, obj)

    def _kind(self, obj: Mapping[str, Any]) -> str | None:
        """The object's kind when the store keeps objects of it, and this one."""
        kind = obj.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            return None
        if kind == NODE_STATE and self.state_namespace is not None:
            namespace = object_key(obj)[1]
            if namespace and namespace != self.state_namespace:
                self.other_state_namespaces.add(namespace)
                return None
        return kind
