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

from webhook.cluster.live import STATE_NAMESPACE, Resource, policy_resource, resources
from webhook.cluster.store import AGENT_POD, KINDS, POD
from webhook.kube import list_pages, request

#: Big clusters answer in pages rather than one response of every pod.
PAGE = 500
TIMEOUT_SECONDS = 30
#: What the webhook reads, but for the agents' pods, which only its controller reads.
READ = tuple(kind for kind in KINDS if kind != AGENT_POD)


class SnapshotError(RuntimeError):
    """The cluster could not be read; the message says which cluster and why."""


def _pages(client: ApiClient, res: Resource, query: Sequence[tuple[str, str]] = ()) -> Iterator[dict[str, Any]]:
    def fetch(query: list[tuple[str, str]]) -> Any:
        return request(client, "GET", res.path, query=query, accept=res.list_accept,
                       timeout=(TIMEOUT_SECONDS, TIMEOUT_SECONDS))

    for body in list_pages(fetch, [*res.selectors(), *query], res.limit(PAGE)):
        for item in body.get("items") or []:
            # Items of a list carry no apiVersion/kind of their own, those of a metadata list another one.
            yield {**item, "apiVersion": res.api_version, "kind": res.kind}


def _whole_pod(client: ApiClient, key: tuple[str, str]) -> Iterator[dict[str, Any]]:
    """The pod ``key`` whole (none when there is no such pod), for the rules that compare an UPDATE with
    it; a list of the one pod rather than a get: a list-only identity suffices, as for the rest."""
    whole = Resource(POD, f"/api/v1/namespaces/{key[0]}/pods")
    return _pages(client, whole, [("fieldSelector", f"metadata.name={key[1]}")])


def _list_all(client: ApiClient, namespace: str, whole_pods: Collection[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    # As the webhook lists them (webhook.cluster.live.resources): whole Nodes (their taints and
    # spec.unschedulable decide which nodes count), Pods with their metadata only, MultusNodeStates of
    # ``namespace`` only. Each object is reduced to what the store keeps as it comes.
    for res in resources(namespace, READ):
        try:
            seen: set[tuple[str, str]] = set()
            for obj in _pages(client, res):
                meta = obj["metadata"]
                key = (meta.get("namespace", ""), meta.get("name", ""))
                if res.kind == POD and key in whole_pods:
                    seen.add(key)
                    obj = next(_whole_pod(client, key), obj)
                yield obj
            if res.kind == POD:
                # The list leaves finished pods out (as the webhook's watch does); one an input updates
                # exists all the same: read whole, it makes that input an UPDATE.
                for key in sorted(set(whole_pods) - seen):
                    yield from _whole_pod(client, key)
        except ApiException as exc:
            # A CRD that is not installed means no objects of that kind, not an unreadable cluster.
            if not res.crd or exc.status != 404:
                raise


def list_objects(kubeconfig: str, context: str | None = None, *, namespace: str = STATE_NAMESPACE,
                 whole_pods: Collection[tuple[str, str]] = ()) -> Iterator[dict[str, Any]]:
    """Every Node, MultusNodeState (of the webhook's ``namespace``), NAD, NetworkProfile, Pod and
    ResourceQuota of the cluster, as the webhook reads them, a page at a time as they are consumed (a
    large cluster's objects are never all held at once); Pods with their metadata only, but those named
    in ``whole_pods`` ((namespace, name)). Raises SnapshotError while it is read."""
    with _reading(kubeconfig, context) as client:
        yield from _list_all(client, namespace, whole_pods)


def policy_text(kubeconfig: str, context: str | None = None, namespace: str = STATE_NAMESPACE) -> str | None:
    """The policy the webhook of this cluster serves: the 'policy' key of ConfigMap
    multus-webhook-policy in the webhook's ``namespace`` (listed, as everything check reads); None
    without one, when the webhook uses its defaults. Raises SnapshotError."""
    with _reading(kubeconfig, context) as client:
        for configmap in _pages(client, policy_resource(namespace)):
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
