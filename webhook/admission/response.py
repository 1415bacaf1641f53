"""Building AdmissionReview responses: allow, deny, patch, warnings (after controller-runtime's
Allowed / Denied / Patched / Errored helpers)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from webhook.admission.review import API_VERSION
from webhook.rules import Finding
from webhook.text import printable

# The apiserver keeps one warning recorder per API request, for every webhook it calls: past 4096
# characters of warnings in all, it cuts every one of them to 256 (k8s.io/apiserver
# pkg/endpoints/filters/warning.go: truncateAtTotalRunes, truncateItemRunes). A pod goes through both
# /mutate and /validate, so each has a share, and the two shares with a "... left out" line each (under
# 48 characters) stay within 4096. /validate has most: it has most to say. A message is kept whole
# while it fits in its share, and one so long that it would not fit (a huge key quoted) is cut by us,
# where it says so.
VALIDATE_WARNINGS = 2800
MUTATE_WARNINGS = 1200
WARNING_LONGEST = 1000
#: orjson writes JSON nested at most this deep ("Recursion limit reached" past it), though it reads 1024
#: levels: a patch that copies a deep value the request carried can be too deep to write.
WRITE_DEPTH = 254


class Unwritable(ValueError):
    """A response whose patch copies a value from the request nested too deep to write; the message
    names it."""


@dataclass(frozen=True)
class Response:
    allowed: bool
    code: int = 200
    message: str = ""
    reason: str = ""
    patch: Sequence[dict[str, Any]] = ()
    warnings: tuple[str, ...] = field(default=())
    #: What the rules found, for the metrics and the log; the review carries them as message and warnings.
    findings: tuple[Finding, ...] = ()
    #: The request could not be judged (errored): neither a denial nor an allowance.
    error: bool = False

    def with_warnings(self, warnings: Iterable[str]) -> Response:
        return replace(self, warnings=self.warnings + tuple(warnings))


def allowed(warnings: Iterable[str] = (), findings: tuple[Finding, ...] = ()) -> Response:
    return Response(True, warnings=tuple(warnings), findings=findings)


def denied(message: str, *, code: int = 403, reason: str = "Forbidden", warnings: Iterable[str] = (),
           findings: tuple[Finding, ...] = ()) -> Response:
    # The apiserver turns a denial code under 400 into 400; say so ourselves.
    return Response(False, code=max(code, 400), message=message, reason=reason, warnings=tuple(warnings),
                    findings=findings)


def patched(ops: Sequence[dict[str, Any]], warnings: Iterable[str] = ()) -> Response:
    return Response(True, patch=ops, warnings=tuple(warnings))


def errored(message: str, code: int = 400) -> Response:
    return Response(False, code=code, message=message, reason="BadRequest" if code == 400 else "InternalError",
                    error=True)


def fit_warnings(warnings: Iterable[str], share: int) -> list[str]:
    """One warning per message, never split: the apiserver records a warning text once per request
    (a line two wrapped messages share was dropped from the second, cutting it short) and drops a
    warning with a control character in it, so those are escaped. Stops before ``share`` characters
    (the endpoint's share of the apiserver's total), saying how many were left out."""
    fitted: list[str] = []
    total = 0
    pending = list(dict.fromkeys(_shortened(printable(w)) for w in warnings))
    for i, warning in enumerate(pending):
        if total + len(warning) > share:
            fitted.append(f"... {len(pending) - i} more warning(s) left out")
            break
        fitted.append(warning)
        total += len(warning)
    return fitted


def _shortened(warning: str) -> str:
    if len(warning) <= WARNING_LONGEST:
        return warning
    return f"{warning[:WARNING_LONGEST - 40]} ... ({len(warning) - WARNING_LONGEST + 40} characters cut)"


def to_review(uid: str, response: Response, *, mutating: bool) -> dict[str, Any]:
    """The AdmissionReview to send back. A validating endpoint never returns a patch: the apiserver
    treats that as a failed call."""
    if response.patch and not mutating:
        raise ValueError("a validating webhook must not return a patch")
    body: dict[str, Any] = {"uid": uid, "allowed": response.allowed}
    if not response.allowed:
        body["status"] = {"code": response.code, "message": response.message, "reason": response.reason}
    if response.patch:
        body["patchType"] = "JSONPatch"
        try:
            patch = orjson.dumps(list(response.patch))
        except orjson.JSONEncodeError as exc:
            too_deep = _too_deep(response.patch)
            if too_deep is None:
                raise
            raise Unwritable(too_deep) from exc
        body["patch"] = base64.b64encode(patch).decode()
    if response.warnings:
        body["warnings"] = fit_warnings(response.warnings, MUTATE_WARNINGS if mutating else VALIDATE_WARNINGS)
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": body}


def _too_deep(patch: Sequence[dict[str, Any]]) -> str | None:
    """What in ``patch`` is nested too deep to write, if that is why it cannot be written."""
    deepest = max(patch, key=lambda op: _depth(op.get("value")))
    depth = _depth(deepest.get("value"))
    # The patch is a list of objects: the value sits two levels down in it.
    if depth + 2 <= WRITE_DEPTH:
        return None
    field = ".".join(part.replace("~1", "/").replace("~0", "~") for part in str(deepest.get("path", "")).split("/")[1:])
    return (f"multus-webhook cannot write its patch for this object: the value it would write at {field} is nested "
            f"{depth} levels deep, and its JSON writer goes {WRITE_DEPTH - 2} levels deep in a patch; flatten it")


def _depth(value: Any) -> int:
    """Levels of objects and arrays in ``value``, counted without recursion: the request may nest 1024."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in item)
    return deepest
