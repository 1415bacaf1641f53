"""The apiVersion and kind a manifest writes a judged kind with.

`multus-webhook check` reads manifests before any apiserver does. A kind the rules judge, written in a
group that does not serve it (``k8s.v1.cni.cncf.io/v1``, the prefix of Multus's annotations, for a
NetworkAttachmentDefinition) or misspelled (``NetworkAttachmentDefiniton``, ``Deployments``, ``pod``),
is not what it means to be: kubectl apply refuses it ("no matches for kind"), and none of the rules
would look at it. The apiserver never sends the webhook such an object: these rules judge manifests
only (operation MANIFEST).
"""

from __future__ import annotations

from collections.abc import Iterator
from difflib import SequenceMatcher

from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import MANIFEST, rule
from webhook.rules.subject import Subject

#: The apiVersion each kind the rules judge (directly, or through its pod template) is written with.
API_VERSIONS: dict[str, str] = {
    "NetworkAttachmentDefinition": "k8s.cni.cncf.io/v1",
    "NetworkProfile": "multus-webhook.io/v1alpha1",
    "Pod": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "ReplicationController": "v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


#: Where old manifests still write some workloads.
_OLD_GROUPS: dict[str, frozenset[str]] = {kind: frozenset({"extensions"})
                                          for kind in ("Deployment", "DaemonSet", "ReplicaSet")}

#: API groups each judged kind is read in. A kind of the same name in another group (a CRD of some other
#: project called NetworkProfile, Volcano's batch.volcano.sh Job) is none of our business, unless its
#: group looks like a slip for ours (meant_api_version).
GROUPS: dict[str, frozenset[str]] = {
    kind: frozenset({group_of(version)}) | _OLD_GROUPS.get(kind, frozenset())
    for kind, version in API_VERSIONS.items()
}

#: Groups that serve some judged kind: one of them for another kind is a slip (a NAD in multus-webhook.io,
#: a Deployment in v1), never another project's CRD.
_OURS = frozenset().union(*GROUPS.values())

#: How alike (difflib's ratio) a group must be to one of the kind's to be taken for a misspelling of it:
#: k8s.v1.cni.cncf.io and cni.cncf.io for k8s.cni.cncf.io (0.91, 0.85), app for apps (0.86); not
#: batch.volcano.sh for batch (0.48), apps.kruise.io for apps (0.44). The same for kinds, case aside:
#: Deploymnet, Deployments, Pods; not the kinds the groups serve besides (PodTemplate 0.43,
#: ControllerRevision, MultusNodeState).
SIMILAR = 0.8


def _alike(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


def _spelled(group: str) -> str:
    # The core group is "" in an apiVersion (v1) and "core" where people name it (core/v1).
    return group or "core"


def meant_api_version(kind: str, api_version: str) -> str | None:
    """The apiVersion a manifest of ``kind`` written with ``api_version`` was meant to have, when its
    group does not serve the kind but looks like a slip for one that does; None otherwise (the group
    serves it, or the kind is not one the rules judge, or the object is another project's)."""
    groups = GROUPS.get(kind)
    group = group_of(api_version)
    if groups is None or group in groups:
        return None
    if group in _OURS or any(_alike(_spelled(group), _spelled(g)) >= SIMILAR for g in groups):
        return API_VERSIONS[kind]
    return None


def meant_kind(kind: str, api_version: str) -> str | None:
    """The judged kind an object written as ``kind`` in ``api_version`` was meant to be, when it is none
    as written: the kind itself when only its group is a slip (meant_api_version), or the judged kind
    ``kind`` is a misspelling of (another case, a plural, a typo) when its group serves that kind or
    looks like a slip for one that does. None for anything else: a kind of no group of ours, or one far
    from every judged kind."""
    if kind in GROUPS:
        return kind if meant_api_version(kind, api_version) is not None else None
    if not kind:
        return None
    closest = max(GROUPS, key=lambda judged: _alike(kind.lower(), judged.lower()))
    if _alike(kind.lower(), closest.lower()) < SIMILAR:
        return None
    if group_of(api_version) in GROUPS[closest] or meant_api_version(closest, api_version) is not None:
        return closest
    return None


# A misspelled kind reaches these rules as the judged kind it was taken for (check.inputs.target), its
# manifest as written: both rules may find their slip in the same object.

@rule("unknown-api-group", kinds=API_VERSIONS, severity=Severity.WARN,
      title="a judged kind is written in its API group", operations={MANIFEST})
def unknown_api_group(subject: Subject) -> Iterator[Violation]:
    """A NetworkAttachmentDefinition, NetworkProfile, Pod or workload whose apiVersion names a group
    that does not serve its kind, and looks like a slip for the one that does (k8s.v1.cni.cncf.io, the
    prefix of Multus's annotations, instead of k8s.cni.cncf.io): kubectl apply refuses it, and no
    other rule judged it. Only `multus-webhook check` reads manifests as written; the webhook never
    receives such an object."""
    written = subject.obj.get("apiVersion")
    written = written if isinstance(written, str) else ""
    meant = meant_api_version(subject.kind, written)
    if meant is not None:
        group = group_of(written)
        where = ("no apiVersion" if not written
                 else f'apiVersion "{written}": no API group {group!r} serves {subject.kind}' if group
                 else f'apiVersion "{written}": the core API group has no {subject.kind}')
        yield Violation(
            "apiVersion",
            f"{where}, so kubectl apply finds no such kind and no other rule judged it; write apiVersion: {meant}",
        )


@rule("unknown-kind", kinds=API_VERSIONS, severity=Severity.WARN,
      title="a judged kind is spelled as its API group serves it", operations={MANIFEST})
def unknown_kind(subject: Subject) -> Iterator[Violation]:
    """A kind that looks like a misspelling of a judged one (NetworkAttachmentDefiniton, Deployments,
    pod), in a group that serves the judged kind or looks like a slip for one that does: kubectl apply
    refuses it ("no matches for kind"), and no other rule judged it. Only `multus-webhook check` reads
    manifests as written."""
    written = subject.obj.get("kind")
    if written != subject.kind:
        yield Violation(
            "kind",
            f'kind "{written}": there is no such kind (kinds are singular and case-sensitive), so kubectl apply '
            f"finds none and no other rule judged it; write kind: {subject.kind}",
        )
