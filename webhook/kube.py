"""Thin helpers over the official `kubernetes` client shared by the cluster cache, the agent, the
controller and the certificate manager: client loading, REST calls by path with plain JSON, RFC 3339
times and Events. Everything here does I/O or reads the clock; decisions live in pure modules.

Calls go through the client's ApiClient (configuration, authentication, TLS, connection pool) by
path, not through its generated API classes: the pure code works on objects as the apiserver serves
them (camelCase dicts), and importing CoreV1Api alone costs a process 21 MiB (measured), more than
the webhook's whole cache of 5,000 nodes."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.keepalive import tcp_keepalive_socket_options

log = logging.getLogger(__name__)

#: TCP keepalive on every connection to the apiserver: first probe after 15 s idle, then every 5 s, given up
#: after 3 unanswered. A watch whose connection went away without a reset (a node, NAT or load balancer
#: that dropped it) fails within about 30 s instead of waiting on a socket that never delivers (the
#: MultusNodeStates come on one: the controller would see every heartbeat stop).
KEEPALIVE = {"idle": 15, "interval": 5, "count": 3}

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: Events about a cluster-scoped object (a Node) go to the default namespace, as the kubelet's do.
NODE_EVENT_NAMESPACE = "default"


def load_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An explicit kubeconfig, else the pod's service account, else $KUBECONFIG / ~/.kube/config.
    Raises kubernetes.config.ConfigException when none works."""
    configuration = client.Configuration()
    # Every caller retries on its own terms (watches with backoff, the agent and controller on their
    # next pass); urllib3's immediate retries would only add noise and delay.
    configuration.retries = False
    configuration.socket_options = tcp_keepalive_socket_options(**KEEPALIVE)
    if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration)
    return client.ApiClient(configuration)


JSON = "application/json"
#: A list's items with their metadata only (what a Node or Pod is to the rules).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
#: (connect, read) seconds for one call.
TIMEOUT = (10.0, 60.0)


def open_response(api: client.ApiClient, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                  body: Any = None, content_type: str = JSON, accept: str = JSON,
                  timeout: tuple[float, float] = TIMEOUT) -> Any:
    """Send a request; the urllib3 response, body not yet read (a watch reads it as a stream; the
    caller releases it). Raises ApiException for an answer other than 2xx."""
    headers = {"Accept": accept, **({"Content-Type": content_type} if body is not None else {})}
    method, url, headers, body, _ = api.param_serialize(
        method, path, query_params=list(query), header_params=headers, body=body, auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        response.read()  # type: ignore[no-untyped-call]
        response.response.release_conn()
        raise ApiException(http_resp=response)
    return response.response


def request(api: client.ApiClient, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
            body: Any = None, content_type: str = JSON, accept: str = JSON,
            timeout: tuple[float, float] = TIMEOUT) -> Any:
    """One call; its decoded JSON body (None when empty). Raises ApiException for an answer other than 2xx."""
    raw = open_response(api, method, path, query=query, body=body, content_type=content_type, accept=accept,
                        timeout=timeout)
    try:
        data = raw.data
    finally:
        raw.release_conn()
    return json.loads(data) if data else None


def list_pages(fetch: Callable[[list[tuple[str, str]]], Mapping[str, Any]], query: Sequence[tuple[str, str]],
               limit: int) -> Iterator[Mapping[str, Any]]:
    """The bodies of a list read ``limit`` items at a time; ``fetch`` GETs the list with a query. The
    last body is the one whose metadata has no ``continue`` (its resourceVersion is the list's)."""
    token: str | None = None
    while True:
        body = fetch([("limit", str(limit)), *query, *([("continue", token)] if token else [])])
        yield body
        meta = body.get("metadata")
        token = meta.get("continue") if isinstance(meta, Mapping) else None
        if not token:
            return


def status_message(exc: ApiException) -> str:
    """The message of the Status object the apiserver answered with, else the body or the reason."""
    text = exc.body if isinstance(exc.body, str) else ""
    try:
        return str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        return text or str(exc.reason)


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


def emit_event(api: client.ApiClient, involved: Mapping[str, Any], *, kind: str, event_type: str, reason: str,
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
        request(api, "POST", f"/api/v1/namespaces/{namespace}/events", body=body)
    except Exception as exc:  # see the docstring
        log.warning("could not record event %s on %s/%s: %s", reason, kind, meta.get("name"), exc)
