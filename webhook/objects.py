"""Reading Kubernetes objects as they are served (plain JSON values), shared by the pure core, the
cluster store and the admission path. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a field of the wrong type reads as absent."""
    return value if isinstance(value, Mapping) else {}


def as_text(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None: an empty or mistyped field reads as absent."""
    return value if isinstance(value, str) and value else None
