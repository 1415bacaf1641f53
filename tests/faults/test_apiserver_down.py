"""The apiserver goes away while the webhook runs: the webhook answers from its cache meanwhile (the
apiserver cannot call it then, so the requests are posted to it directly), /readyz stays ready and
says for how long it has been out of contact, and every change made as soon as the apiserver is back
reaches the cache once the watches resume. Own control plane (module fixtures `cluster`,
`live_webhook`)."""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid
from typing import Any

import pytest

from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually

pytestmark = pytest.mark.slow
DENIED = 'admission webhook "nads.multus-webhook.io" denied the request: '


def nad(name: str, namespace: str, ipam: dict[str, Any]) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": "eth1", "ipam": ipam}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": json.dumps(config)}}


def dry_run(cp: ControlPlane, obj: dict[str, Any]) -> tuple[bool, str]:
    result = cp.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    return result.returncode == 0, result.stdout + result.stderr


def refused_for(text: str) -> Any:
    return lambda r: not r[0] and DENIED in r[1] and text in r[1]


def get(server: WebhookServer, path: str) -> str:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(f"{server.url}{path}", context=ctx, timeout=5) as resp:
        return str(resp.read().decode())


def validate(server: WebhookServer, obj: dict[str, Any]) -> dict[str, Any]:
    """What the apiserver would post, posted by us."""
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "k8s.cni.cncf.io", "version": "v1",
                                           "kind": "NetworkAttachmentDefinition"},
        "operation": "CREATE", "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"],
        "object": obj}}
    request = urllib.request.Request(f"{server.url}/validate?timeout=5s", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(request, context=ctx, timeout=5) as resp:
        response: dict[str, Any] = json.loads(resp.read())["response"]
        return response


def test_the_webhook_answers_from_its_cache_while_the_apiserver_is_away_and_misses_nothing(
        cluster: ControlPlane, live_webhook: WebhookServer) -> None:
    ns = f"f-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", ns)
    before = nad("before", ns, {"type": "host-local", "subnet": "10.70.0.0/24"})
    ok, out = dry_run(cluster, before)
    assert ok, out
    for obj in (before, nad("free", ns, {"type": "host-local", "subnet": "10.71.0.0/24"})):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    overlaps_before = nad("x", ns, {"type": "whereabouts", "range": "10.70.0.128/25"})
    eventually(lambda: dry_run(cluster, overlaps_before), "the first NAD in the cache", until=refused_for("overlaps"))

    cluster.stop_apiserver()
    try:
        answer = validate(live_webhook, overlaps_before)
        assert answer["allowed"] is False
        assert f"overlaps NAD {ns}/before" in answer["status"]["message"]
        assert validate(live_webhook, nad("other", ns, {"type": "host-local", "subnet": "10.74.0.0/24"}))["allowed"]
        # Ready all along (see docs/failure-modes.md), saying how long the cache has been on its own.
        reason = eventually(lambda: get(live_webhook, "/readyz"), "/readyz to report the lost contact",
                            until=lambda r: "no contact with the apiserver for" in r)
        assert reason.startswith("ok, answering from the cache: no contact with the apiserver for ")
        gauge = eventually(lambda: get(live_webhook, "/metrics"), "the out-of-contact gauge",
                           until=lambda m: "multus_webhook_cache_out_of_contact_seconds 0.0" not in m)
        assert "multus_webhook_cache_out_of_contact_seconds " in gauge
    finally:
        cluster.start_apiserver()

    # At once, before the watches (backing off while it was down) are back: a delete, a create, a change.
    cluster.kubectl("delete", "nad", "-n", ns, "before")
    after = nad("after", ns, {"type": "host-local", "subnet": "10.72.0.0/24"})
    cluster.kubectl("apply", "-f", "-", input=json.dumps(after))
    changed = nad("free", ns, {"type": "host-local", "subnet": "10.73.0.0/24"})
    cluster.kubectl("apply", "-f", "-", input=json.dumps(changed))

    eventually(lambda: dry_run(cluster, overlaps_before)[0], "the deletion made after the restart to reach the cache")
    eventually(lambda: dry_run(cluster, nad("y", ns, {"type": "whereabouts", "range": "10.72.0.0/25"})),
               "the NAD created after the restart to reach the cache", until=refused_for(f"overlaps NAD {ns}/after"))
    eventually(lambda: dry_run(cluster, nad("z", ns, {"type": "whereabouts", "range": "10.73.0.0/25"})),
               "the NAD changed after the restart to reach the cache", until=refused_for(f"overlaps NAD {ns}/free"))
    ok, out = dry_run(cluster, nad("w", ns, {"type": "whereabouts", "range": "10.71.0.0/25"}))
    assert ok, out  # the range it had before is free again
    # /readyz and the gauge read the same record of contact, but one request after the other: a watch
    # that fails once more in between (opened while the restarted apiserver still settles: its watch
    # cache not initialized yet, a 410 and a relist) has the gauge counting again though /readyz just
    # said ok. Both are read, one after the other, until both say so.
    _, metrics = eventually(lambda: (get(live_webhook, "/readyz"), get(live_webhook, "/metrics")),
                            "/readyz back to plain ok and the out-of-contact gauge back to 0",
                            until=lambda r: r[0] == "ok" and "multus_webhook_cache_out_of_contact_seconds 0.0" in r[1])
    # Through the restart nothing was skipped: a counter per kind the cache watches, read at the scrape.
    assert 'multus_webhook_cache_skipped_events_total{kind="NetworkAttachmentDefinition"} 0.0' in metrics
    assert 'multus_webhook_cache_unreadable_objects{kind="Pod"} 0.0' in metrics
