"""The controller's metrics, read from it at each scrape: which replica leads, the nodes by readiness
and its reason (from the leader only: another replica's verdicts are from its last term), the Events
dropped and pod repair's evictions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from webhook.agent.nodestate import AGENT_STOPPED
from webhook.agent.probe import CHECK_FALSE_REASONS
from webhook.controller import decide
from webhook.controller.controller import NODE_STATE_BEHIND, Controller

#: Every reason a verdict can have from this controller and this version's agent; any other (a newer
#: agent's) is counted as OTHER, so that the series stay bounded whatever a MultusNodeState says.
KNOWN_REASONS = decide.OWN_REASONS | CHECK_FALSE_REASONS | {AGENT_STOPPED, NODE_STATE_BEHIND}
OTHER = "Other"
#: pod repair's results: evicted, refused (a PodDisruptionBudget, an admission policy: tried again),
#: given_up (refused too often on this boot), forbidden (the eviction permission is missing).
REPAIR_RESULTS = ("evicted", "refused", "given_up", "forbidden")


def reason_label(reason: str) -> str:
    return reason if reason in KNOWN_REASONS else OTHER


def ready_label(ready: bool | None) -> str:
    return "unknown" if ready is None else str(ready).lower()


class ControllerMetrics:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def collect(self) -> Iterator[Metric]:
        c = self.controller
        leading = c.elector.is_leader()
        yield GaugeMetricFamily("multus_webhook_controller_leader",
                                "1 while this replica holds the controller's Lease and acts, else 0.",
                                value=1.0 if leading else 0.0)
        nodes = GaugeMetricFamily(
            "multus_webhook_nodes",
            "Nodes by the leader's last verdict on Multus readiness (ready true, false, or unknown while it "
            "cannot judge yet: no node state within the grace period, a heartbeat not yet seen to change, "
            "node states not yet fed to it, a cached node state behind the apiserver's) and its reason "
            "(Other: a reason this version does not know). Only the leader reports it.", labels=["ready", "reason"])
        if leading:
            counts = Counter((ready_label(ready), reason_label(reason)) for ready, reason in c.verdicts.copy().values())
            for (ready, reason), count in sorted(counts.items()):
                nodes.add_metric([ready, reason], count)
        yield nodes
        yield CounterMetricFamily("multus_webhook_events_dropped",
                                  "Events the controller dropped because too many were waiting to be sent.",
                                  value=c.events.dropped)
        repairs = CounterMetricFamily("multus_webhook_pod_repairs",
                                      "Pod repair's evictions by result: evicted, refused (tried again), given_up "
                                      "(refused too often on this boot), forbidden (no permission).",
                                      labels=["result"])
        repaired = c.repaired.copy()
        for result in REPAIR_RESULTS:
            repairs.add_metric([result], repaired.get(result, 0))
        yield repairs


def register(registry: CollectorRegistry, controller: Controller) -> None:
    registry.register(ControllerMetrics(controller))
