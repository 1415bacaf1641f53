"""Building AdmissionReview responses: allow, deny, patch, warnings (after controller-runtime's
Allowed / Denied / Patched / Errored helpers)."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from webhook.admission.review import API_VERSION

# kubectl prints each warning on a line of its own; the apiserver asks for each to stay under 120
# characters and truncates past 4096 in total.
WARNING_WIDTH = 119
WARNINGS_TOTAL = 4000


@dataclass(frozen=True)
class Response:
    allowed: bool
    code: int = 200
    message: str = ""
    reason: str = ""
    patch: Sequence[dict[str, Any]] = ()
    warnings: tuple[str, ...] = field(default=())

    def with_warnings(self, warnings: Iterable[str]) -> Response:
        return replace(self, warnings=self.warnings + tuple(warnings))


def allowed(warnings: Iterable[str] = ()) -> Response:
    return Response(True, warnings=tuple(warnings))


def denied(message: str, *, code: int = 403, reason: str = "Forbidden", warnings: Iterable[str] = ()) -> Response:
    # The apiserver turns a denial code under 400 into 400; say so ourselves.
    return Response(False, code=max(code, 400), message=message, reason=reason, warnings=tuple(warnings))


def patched(ops: Sequence[dict[str, Any]], warnings: Iterable[str] = ()) -> Response:
    return Response(True, patch=ops, warnings=tuple(warnings))


def errored(message: str, code: int = 400) -> Response:
    return Response(False, code=code, message=message, reason="BadRequest" if code == 400 else "InternalError")


def fit_warnings(warnings: Iterable[str]) -> list[str]:
    """Wrap each warning into lines under 120 characters (nothing is cut from a message) and stop
    before the apiserver's total limit, saying how many were left out."""
    lines: list[str] = []
    total = 0
    pending = [line for w in warnings for line in _wrap(w)]
    for i, line in enumerate(pending):
        if total + len(line) > WARNINGS_TOTAL:
            lines.append(f"... {len(pending) - i} more warning line(s) left out")
            break
        lines.append(line)
        total += len(line)
    return lines


def _wrap(warning: str) -> list[str]:
    return textwrap.wrap(warning, WARNING_WIDTH, subsequent_indent="  ", break_on_hyphens=False) or [""]


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
        body["patch"] = base64.b64encode(orjson.dumps(list(response.patch))).decode()
    if response.warnings:
        body["warnings"] = fit_warnings(response.warnings)
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": body}
