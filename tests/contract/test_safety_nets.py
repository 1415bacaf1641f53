"""The server's two safety nets, each made to catch something: a handler that raises, or whose answer
cannot be written, is answered as a review (code 500, InternalError, the apiserver then applies
failurePolicy), and any other error while
serving is a JSON 500 without a traceback. Both are logged with the traceback for the operator."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from webhook.admission.handlers import AdmissionContext
from webhook.multus.profiles import ProfileMerge
from webhook.rules.view import UNKNOWN_CLUSTER
from webhook.server import Metrics, ServerState, make_app


class BrokenView(type(UNKNOWN_CLUSTER)):  # type: ignore[misc]
    """A cluster view with a bug: merging a profile raises."""

    def profile_merge(self, namespace: str, name: str, existing: str | None, first_index: int = 1,
                      default_network: str | None = None) -> Any:
        raise RuntimeError("a bug in the view")


class UnwritableView(type(UNKNOWN_CLUSTER)):  # type: ignore[misc]
    """A cluster view with a bug: the networks it merges are not text."""

    def profile_merge(self, namespace: str, name: str, existing: str | None, first_index: int = 1,
                      default_network: str | None = None) -> Any:
        return ProfileMerge(merged=object())  # type: ignore[arg-type]


class BrokenMetrics(Metrics):
    def answered(self, endpoint: str, kind: str, operation: str, verdict: str, seconds: float,
                 dry_run: str = "") -> None:
        raise RuntimeError("a bug in the metrics")


def review(uid: str = "u-1") -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "labels": {"multus-webhook.io/network-profile": "storage"}}, "spec": {}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "default", "object": pod}}


async def samples(client: TestClient[Any, Any], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name`` in /metrics, by their sorted labels."""
    text = await (await client.get("/metrics")).text()
    return {tuple(sorted(s.labels.items())): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


async def client(state: ServerState) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(state))) as c:
        yield c


@pytest.fixture
async def broken_handler() -> AsyncIterator[TestClient[Any, Any]]:
    async for c in client(ServerState(context=AdmissionContext(view=BrokenView()))):
        yield c


@pytest.fixture
async def unwritable_patch() -> AsyncIterator[TestClient[Any, Any]]:
    async for c in client(ServerState(context=AdmissionContext(view=UnwritableView()))):
        yield c


@pytest.fixture
async def broken_server() -> AsyncIterator[TestClient[Any, Any]]:
    async for c in client(ServerState(metrics=BrokenMetrics())):
        yield c


async def test_a_handler_that_raises_is_answered_as_a_review(broken_handler: TestClient[Any, Any],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    resp = await broken_handler.post("/mutate", json=review())
    assert resp.status == 200
    text = await resp.text()
    assert "Traceback" not in text
    answer = await resp.json()
    assert answer["response"]["uid"] == "u-1"
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 500
    assert answer["response"]["status"]["reason"] == "InternalError"
    assert any(r.levelno == logging.ERROR and r.exc_info and "a bug in the view" in str(r.exc_info[1])
               for r in caplog.records)


async def test_an_answer_that_cannot_be_written_is_answered_as_a_review(
        unwritable_patch: TestClient[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    resp = await unwritable_patch.post("/mutate", json=review())
    assert resp.status == 200
    answer = await resp.json()
    assert answer["response"]["uid"] == "u-1"
    assert answer["response"]["allowed"] is False
    assert "patch" not in answer["response"]
    assert (answer["response"]["status"]["code"], answer["response"]["status"]["reason"]) == (500, "InternalError")
    assert any(r.levelno == logging.ERROR and r.exc_info and "not JSON serializable" in str(r.exc_info[1])
               for r in caplog.records)


async def test_an_error_outside_the_handler_is_a_json_500_without_a_traceback(
        broken_server: TestClient[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    resp = await broken_server.post("/validate", json=review())
    assert resp.status == 500
    text = await resp.text()
    assert "Traceback" not in text
    assert "a bug in the metrics" not in text
    answer = await resp.json()
    assert answer["kind"] == "Status"
    assert answer["code"] == 500
    assert answer["message"] == "internal error in multus-webhook; see its logs"
    assert any(r.exc_info and "a bug in the metrics" in str(r.exc_info[1]) for r in caplog.records)


async def test_a_handler_that_raises_counts_as_an_error_not_a_denial(broken_handler: TestClient[Any, Any]) -> None:
    """An answer that says the webhook failed (errored(): 500 here, 400 for a review it cannot judge) is
    verdict="error": counted as a denial, a bug breaking every pod looked like users writing bad pods."""
    assert (await (await broken_handler.post("/mutate", json=review())).json())["response"]["status"]["code"] == 500
    assert await samples(broken_handler, "multus_webhook_requests_total") == {
        (("dry_run", "false"), ("endpoint", "/mutate"), ("kind", "Pod"), ("operation", "CREATE"),
         ("verdict", "error")): 1.0}


async def test_a_rule_that_raises_is_counted_by_rule_and_stays_a_warning(
        broken_handler: TestClient[Any, Any]) -> None:
    answer = await (await broken_handler.post("/validate", json=review())).json()
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [
        "internal error in rule pod-networks-gate-missing: RuntimeError('a bug in the view'); please report it "
        "[pod-networks-gate-missing]"]
    assert await samples(broken_handler, "multus_webhook_rule_errors_total") == {
        (("rule", "pod-networks-gate-missing"),): 1.0}
    assert await samples(broken_handler, "multus_webhook_findings_total") == {
        (("audited", "false"), ("dry_run", "false"), ("kind", "Pod"), ("rule", "pod-networks-gate-missing"),
         ("severity", "warn")): 1.0}
