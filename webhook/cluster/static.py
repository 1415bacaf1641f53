"""A ClusterView read from files: `kubectl get ... -o yaml` output or plain multi-document YAML."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from webhook.documents import iter_objects


def object_key(obj: dict[str, Any], default_namespace: str = "") -> tuple[str, str, str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (str(obj.get("kind", "")), str(meta.get("namespace") or default_namespace), str(meta.get("name", "")))


class StaticClusterView:
    """The cluster as a set of objects; an object with the same kind/namespace/name replaces the
    earlier one, as an UPDATE would."""

    def __init__(self, objects: Iterable[dict[str, Any]] = ()) -> None:
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        for obj in objects:
            self.put(obj)

    @classmethod
    def from_files(cls, paths: list[str]) -> StaticClusterView:
        return cls(doc.obj for doc in iter_objects(paths))

    @property
    def known(self) -> bool:
        return True

    def put(self, obj: dict[str, Any]) -> None:
        self._objects[object_key(obj)] = obj

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in self._objects.items() if k == kind]
