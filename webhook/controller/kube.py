"""Thin helpers over the official `kubernetes` client shared by the agent and the controller: client
loading, plain-JSON calls, RFC 3339 times and Events. Everything here does I/O or reads the clock;
decisions live in pure modules."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
#: Events about a cluster-scoped object (a Node) go to the default namespace, as the kubelet's do.
NODE_EVENT_NAMESPACE = "default"


def load_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An explicit kubeconfig, else the pod's service account, else $KUBECONFIG / ~/.kube/config."""
    if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)
    api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    return cast(client.ApiClient, api)


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an API method and return the decoded JSON body: the pure code works on the objects as the
    apiserver serves them (camelCase dicts), not on the client's generated models."""
    resp = fn(*args, _preload_content=False, **kwargs)
    data = resp.data
    return json.loads(data) if data else None


def is_status(exc: BaseException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: heartbeats a second apart must stay distinguishable."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time from an object, or None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def emit_event(core: client.CoreV1Api, involved: Mapping[str, Any], *, kind: str, event_type: str, reason: str,
               message: str, component: str, instance: str) -> None:
    """Record a core/v1 Event on ``involved`` (a Node or a Pod as served). Events are best effort: a
    failure is logged, never raised, so that it cannot stop a reconcile."""
    meta = involved.get("metadata", {})
    namespace = meta.get("namespace") or NODE_EVENT_NAMESPACE
    now = utcnow()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", "v1"), "kind": kind, "name": meta.get("name"),
            "namespace": meta.get("namespace"), "uid": meta.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component, "host": instance},
        "reportingComponent": component,
        "reportingInstance": instance,
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "count": 1,
    }
    try:
        call(core.create_namespaced_event, namespace, body)
    except Exception as exc:  # see the docstring
        log.warning("could not record event %s on %s/%s: %s", reason, kind, meta.get("name"), exc)
