"""A ClusterView read from files: `kubectl get nodes,net-attach-def,pods -A -o yaml` output (a List) or
plain multi-document YAML/JSON of Node, MultusNodeState, NetworkAttachmentDefinition, NetworkProfile,
Pod and ResourceQuota objects. Other kinds are ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.cluster.store import KINDS, ClusterStore
from webhook.documents import iter_objects


def object_key(obj: Mapping[str, Any], default_namespace: str = "") -> tuple[str, str, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or default_namespace), str(meta.get("name", "")))


class StaticClusterView(ClusterStore):
    """The cluster as a set of objects; an object with the same kind/namespace/name replaces the
    earlier one, as an UPDATE would."""

    def __init__(self, objects: Iterable[Mapping[str, Any]] = (), *, default_namespace: str = "default") -> None:
        super().__init__(default_namespace=default_namespace)
        self._known = True
        self.upsert_all((kind, obj) for obj in objects if (kind := _kind(obj)) is not None)

    @classmethod
    def from_files(cls, paths: list[str], *, default_namespace: str = "default") -> StaticClusterView:
        return cls((doc.obj for doc in iter_objects(paths)), default_namespace=default_namespace)

    def put(self, obj: Mapping[str, Any]) -> None:
        kind = _kind(obj)
        if kind is not None:
            self.upsert(kind, obj)

    def remove(self, obj: Mapping[str, Any]) -> None:
        kind = _kind(obj)
        if kind is not None:
            self.delete(kind, obj)


def _kind(obj: Mapping[str, Any]) -> str | None:
    """The object's kind when the store keeps objects of it."""
    kind = obj.get("kind")
    return kind if isinstance(kind, str) and kind in KINDS else None
