"""Reading Kubernetes objects as they are served (plain JSON values), shared by the pure core, the
cluster store and the admission path. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a field of the wrong type reads as absent."""
    # Parsed JSON objects are dicts: testing for one first skips the ABC's instance check, 15 times slower
    # and on every rule's path.
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def as_text(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None: an empty or mistyped field reads as absent."""
    return value if isinstance(value, str) and value else None


#: The most bytes the apiserver takes in an object's annotations, keys and values together
#: (apimachinery ValidateAnnotationsSize: len() of Go strings, so UTF-8 bytes, not characters). It
#: checks this after the mutating webhooks: a mutation that crosses it has the object refused with
#: "metadata.annotations: Too long", which does not say that the mutation, not the user, added the bytes.
MAX_ANNOTATIONS_SIZE = 256 * 1024


def text_size(value: Any) -> int:
    """The bytes of one annotation's key or value as annotations_size counts them."""
    return len(str(value).encode("utf-8", "surrogatepass"))


def annotations_size(annotations: Mapping[str, Any]) -> int:
    """The size of ``annotations`` as the apiserver counts it against MAX_ANNOTATIONS_SIZE: text_size of
    every key and value, written out because /mutate counts every pod's annotations."""
    return sum(len(str(k).encode("utf-8", "surrogatepass")) + len(str(v).encode("utf-8", "surrogatepass"))
               for k, v in annotations.items())


def is_object_name(name: str) -> bool:
    """Whether the apiserver takes ``name`` as an object's name (apimachinery IsDNS1123Subdomain, which
    NADs and custom resources such as whereabouts' IPPools are held to)."""
    return len(name) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(name) is not None
