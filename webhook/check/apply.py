"""What `kubectl apply` makes of a manifest whose object the cluster already has.

Client-side apply (kubectl's default) does not replace the object: it patches it with a three-way
merge of the manifest, the live object and the manifest applied last (kept in the object's
last-applied-configuration annotation). A field the manifest does not set is removed only when the
last applied manifest had it; what someone else wrote (a mutating webhook's networks annotation, a
controller's label) stays. Judged as a replacement instead, re-applying an unchanged manifest of a pod
that a NetworkProfile was applied to looked like removing its networks annotation.

Maps are merged key by key; any other value, lists included, is taken whole from the manifest (the
strategic merge of lists by key, such as containers by name, is not modelled: no rule reads them
after a change).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webhook.cluster.store import LAST_APPLIED
from webhook.objects import as_mapping


def last_applied(live: Mapping[str, Any]) -> Mapping[str, Any]:
    """The manifest last applied to ``live``; empty when it was never applied (created otherwise) or the
    annotation cannot be read, as kubectl then takes it."""
    text = as_mapping(as_mapping(live.get("metadata")).get("annotations")).get(LAST_APPLIED)
    if not isinstance(text, str):
        return {}
    try:
        return as_mapping(json.loads(text))
    except ValueError:
        return {}


def applied(manifest: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The object the apiserver is sent when ``manifest`` is applied to ``live``. kubectl merges the
    manifest with its own copy recorded in it: its annotations are never absent, even when the last
    applied manifest recorded an empty map and this one has none."""
    metadata = as_mapping(manifest.get("metadata"))
    recorded = {**manifest, "metadata": {**metadata, "annotations": {
        **as_mapping(metadata.get("annotations")), LAST_APPLIED: json.dumps(manifest, separators=(",", ":"))}}}
    return _merge(last_applied(live), recorded, live)


def created(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The object the apiserver is sent when ``manifest`` is applied and the cluster has no such object:
    kubectl removes every null member of a map (in lists too), as applying it again would remove those
    fields, and creates what is left."""
    return {key: _without_nulls(value) for key, value in manifest.items() if value is not None}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return created(value)
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _merge(last: Mapping[str, Any], manifest: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in live.items() if key not in last or key in manifest}
    for key, value in manifest.items():
        if value is None:  # null in a manifest deletes the field
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(live.get(key), Mapping):
            merged[key] = _merge(as_mapping(last.get(key)), value, live[key])
        else:
            merged[key] = value
    return merged
