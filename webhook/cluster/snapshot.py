"""A one-shot, read-only snapshot of a live cluster's objects (`check --kubeconfig`).

Only lists are issued, never a watch or a write: a CI job may run this with a read-only identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

import urllib3.exceptions
from kubernetes import config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from webhook.kube import list_pages, request

#: Big clusters answer in pages rather than one response of every pod.
PAGE = 500
TIMEOUT_SECONDS = 30

#: (group, version, plural, kind) of the custom resources the rules may ask about.
CUSTOM = [
    ("k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition"),
    ("multus-webhook.io", "v1alpha1", "networkprofiles", "NetworkProfile"),
    ("multus-webhook.io", "v1alpha1", "multusnodestates", "MultusNodeState"),
]


class SnapshotError(RuntimeError):
    """The cluster could not be read; the message says which cluster and why."""


def _pages(client: ApiClient, path: str, api_version: str, kind: str) -> Iterator[dict[str, Any]]:
    def fetch(query: list[tuple[str, str]]) -> Any:
        return request(client, "GET", path, query=query, timeout=(TIMEOUT_SECONDS, TIMEOUT_SECONDS))

    for body in list_pages(fetch, (), PAGE):
        for item in body.get("items") or []:
            # List items carry no apiVersion/kind of their own.
            yield {"apiVersion": api_version, "kind": kind, **item}


def _list_all(client: ApiClient) -> Iterator[dict[str, Any]]:
    yield from _pages(client, "/api/v1/nodes", "v1", "Node")
    yield from _pages(client, "/api/v1/pods", "v1", "Pod")
    for group, version, plural, kind in CUSTOM:
        try:
            yield from _pages(client, f"/apis/{group}/{version}/{plural}", f"{group}/{version}", kind)
        except ApiException as exc:
            # A CRD that is not installed means no objects of that kind, not an unreadable cluster.
            if exc.status != 404:
                raise


def list_objects(kubeconfig: str, context: str | None = None) -> Iterator[dict[str, Any]]:
    """Every Node, Pod, NAD, NetworkProfile and MultusNodeState of the cluster, as the API serves them,
    a page at a time as they are consumed (a large cluster's objects are never all held at once).
    Raises SnapshotError while it is read."""
    where = f"{kubeconfig}" + (f" (context {context})" if context else "")
    try:
        # The client leaves this one function unannotated.
        new_client = cast(Callable[..., ApiClient], config.new_client_from_config)
        client = new_client(config_file=kubeconfig, context=context, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise SnapshotError(f"{where}: cannot use this kubeconfig: {exc}") from None
    try:
        with client:
            yield from _list_all(client)
    except ApiException as exc:
        raise SnapshotError(f"{where}: the cluster refused a list: {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise SnapshotError(f"{where}: cannot reach the cluster: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{where}: the cluster's answer is not JSON: {exc}") from None
