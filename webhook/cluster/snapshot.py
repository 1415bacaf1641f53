"""A one-shot, read-only snapshot of a live cluster's objects (`check --kubeconfig`).

Only lists are issued, never a watch or a write: a CI job may run this with a read-only identity.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, cast

import urllib3.exceptions
import yaml
from kubernetes import config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from webhook.cluster.live import POLICY_CONFIGMAP, STATE_NAMESPACE
from webhook.kube import JSON, METADATA_LIST, list_pages, request

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


def _pages(client: ApiClient, path: str, api_version: str, kind: str, accept: str = JSON,
           query: Sequence[tuple[str, str]] = ()) -> Iterator[dict[str, Any]]:
    def fetch(query: list[tuple[str, str]]) -> Any:
        return request(client, "GET", path, query=query, accept=accept, timeout=(TIMEOUT_SECONDS, TIMEOUT_SECONDS))

    for body in list_pages(fetch, query, PAGE):
        for item in body.get("items") or []:
            # Items of a list carry no apiVersion/kind of their own, those of a metadata list another one.
            yield {**item, "apiVersion": api_version, "kind": kind}


def _list_all(client: ApiClient, whole_pods: Collection[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    # Of Nodes and Pods the rules read only metadata (a Node's labels, a Pod's annotations): their
    # status and spec were two thirds of what a large cluster sent (measured, 5,000 nodes and 50,000
    # pods: 216 -> 97 MiB). A pod an input updates is read whole, for the rules that compare.
    yield from _pages(client, "/api/v1/nodes", "v1", "Node", METADATA_LIST)
    for pod in _pages(client, "/api/v1/pods", "v1", "Pod", METADATA_LIST):
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if key in whole_pods:
            # A list of the one pod rather than a get: a list-only identity suffices, as for the rest.
            pod = next(_pages(client, f"/api/v1/namespaces/{key[0]}/pods", "v1", "Pod",
                              query=[("fieldSelector", f"metadata.name={key[1]}")]), pod)
        yield pod
    for group, version, plural, kind in CUSTOM:
        try:
            yield from _pages(client, f"/apis/{group}/{version}/{plural}", f"{group}/{version}", kind)
        except ApiException as exc:
            # A CRD that is not installed means no objects of that kind, not an unreadable cluster.
            if exc.status != 404:
                raise


def list_objects(kubeconfig: str, context: str | None = None, *,
                 whole_pods: Collection[tuple[str, str]] = ()) -> Iterator[dict[str, Any]]:
    """Every Node, Pod, NAD, NetworkProfile and MultusNodeState of the cluster, a page at a time as they
    are consumed (a large cluster's objects are never all held at once); Nodes and Pods with their
    metadata only, but the pods named in ``whole_pods`` ((namespace, name)). Raises SnapshotError
    while it is read."""
    with _reading(kubeconfig, context) as client:
        yield from _list_all(client, whole_pods)


def policy_text(kubeconfig: str, context: str | None = None, namespace: str = STATE_NAMESPACE) -> str | None:
    """The policy the webhook of this cluster serves: the 'policy' key of ConfigMap
    multus-webhook-policy in the webhook's ``namespace`` (listed, as everything check reads); None
    without one, when the webhook uses its defaults. Raises SnapshotError."""
    with _reading(kubeconfig, context) as client:
        for configmap in _pages(client, f"/api/v1/namespaces/{namespace}/configmaps", "v1", "ConfigMap",
                                query=[("fieldSelector", f"metadata.name={POLICY_CONFIGMAP}")]):
            text = (configmap.get("data") or {}).get("policy")
            return text if isinstance(text, str) else None
    return None


def context_namespace(kubeconfig: str, context: str | None = None) -> str | None:
    """The namespace the kubeconfig's context (``context``, else its current-context) names, which
    kubectl gives objects that name none; None when it names none. Raises SnapshotError."""
    try:
        with open(kubeconfig, encoding="utf-8") as file:
            # Read here rather than by the client's loader, which needs a current-context even when
            # --context names another.
            loaded = yaml.safe_load(file)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SnapshotError(f"{_where(kubeconfig, context)}: cannot use this kubeconfig: {exc}") from None
    kube = loaded if isinstance(loaded, dict) else {}
    name = context if context is not None else kube.get("current-context")
    for entry in kube.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get("context"), dict):
            namespace = entry["context"].get("namespace")
            return namespace if isinstance(namespace, str) and namespace else None
    # No such context: _reading words that, as for every other use of the kubeconfig.
    return None


def _where(kubeconfig: str, context: str | None) -> str:
    return f"{kubeconfig}" + (f" (context {context})" if context else "")


@contextlib.contextmanager
def _reading(kubeconfig: str, context: str | None) -> Iterator[ApiClient]:
    """A client of the kubeconfig's cluster; whatever goes wrong while it reads, a SnapshotError that
    names the cluster."""
    where = _where(kubeconfig, context)
    try:
        # The client leaves this function unannotated.
        new_client = cast(Callable[..., ApiClient], config.new_client_from_config)
        client = new_client(config_file=kubeconfig, context=context, persist_config=False)
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise SnapshotError(f"{where}: cannot use this kubeconfig: {exc}") from None
    try:
        with client:
            yield client
    except ApiException as exc:
        raise SnapshotError(f"{where}: the cluster refused a list: {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise SnapshotError(f"{where}: cannot reach the cluster: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{where}: the cluster's answer is not JSON: {exc}") from None
