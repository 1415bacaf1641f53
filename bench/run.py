"""`make bench`: what the webhook costs, measured in one run so that ratios hold on a noisy machine.

1. Handler throughput and latency over HTTPS keep-alive on loopback (NAD validation; pod mutation +
   validation), load from a separate process, a cluster state of 5,000 nodes, 10,000 NADs and
   50,000 pods: requests/s at saturation (closed loop), p50/p95/p99 at half that rate (open loop).
2. The floor: the same load against a null aiohttp webhook with the same TLS (bench/null_server.py).
3. On a real apiserver: 2,000 pods created without and with our webhooks; the latency added and the
   apiserver's own apiserver_admission_webhook_admission_duration_seconds.
4. Scale: resident memory with that state, time for the live cache to sync 10,000 NADs from the
   apiserver, the cost of an overlap query among 10,000 NADs, and the cost for the store of one
   Node or MultusNodeState event among 5,000 nodes (agents' heartbeats arrive hundreds a second), and
   the CPU the live server spends per heartbeat when 5,000 of them go through the apiserver.

The servers run as processes pinned to CPU 0 and the load generator to CPU 1. A benchmark, not a
test: nothing here fails on a number; the targets are reported (and tracked in bench/results.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.state import (
    Scale,
    as_mutated,
    cluster_state,
    nad,
    nad_reviews,
    namespace,
    node,
    node_state,
    pod,
    pod_reviews,
    profile,
    write_state,
)
from webhook.cluster.live import STATE_NAMESPACE
from webhook.dev.controlplane import (
    ControlPlane,
    WebhookServer,
    free_port,
    spawn,
    standalone_env,
    terminate,
    wait_https,
    webhook_configurations,
)
from webhook.names import READY_LABEL
from webhook.rules import registered

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.json"
SERVER_CPU, LOAD_CPU = 0, 1
#: Seconds after the live cache's sync by which serve's controller has looked at every node.
CONTROLLER_SETTLE = 10
HISTORY = 20

TARGETS: list[tuple[str, str, str, float]] = [
    # (name, result key, comparison, bound)
    ("pod mutation+validation reviews/s (1 core)", "handlers.pod.ours.saturation_rps", ">=", 1500),
    ("pod reviews/s as a fraction of the null-webhook floor", "handlers.pod.ratio_to_floor", ">=", 0.8),
    ("pod p99 at half saturation (ms)", "handlers.pod.ours.half_rate.p99_ms", "<=", 5.0),
    ("added p99 of a pod create on the real apiserver (ms)", "apiserver.added_p99_ms", "<=", 3.0),
    ("overlap query p99 among 10,000 NADs (ms)", "scale.overlap_query.p99_ms", "<=", 1.0),
    ("RSS with the cluster state (MiB), serve --cluster-state", "scale.rss_mib", "<=", 150),
    ("RSS with the cluster state (MiB), serve --kubeconfig (with its controller)", "scale.live_rss_mib", "<=", 150),
    ("live cache sync of 10,000 NADs (s), with the nodes and pods", "scale.live_sync_s", "<=", 10.0),
]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pin(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` (the affinity of a process is per thread) on ``cpu``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def p99_difference_interval(a: Sequence[float], b: Sequence[float], rounds: int = 1000,
                            seed: int = 23) -> list[float]:
    """95% bootstrap interval of p99(a) - p99(b), where a[i] and b[i] were measured in turn (the same pod
    created in each arm): the pairs are resampled together. How far one run's p99 difference can be
    trusted on a noisy machine."""
    rng = random.Random(seed)
    n = len(a)
    k = min(n - 1, int(0.99 * n))
    differences = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        differences.append(sorted(a[i] for i in picks)[k] - sorted(b[i] for i in picks)[k])
    differences.sort()
    return [round(differences[int(0.025 * rounds)], 3), round(differences[int(0.975 * rounds)], 3)]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {"p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99), "n": len(ordered)}


# --- 1, 2: handlers against our server and the floor ----------------------------------------------


def run_load(port: int, ca: Path, requests: Sequence[str], *, mode: str, duration: float, warmup: float,
             connections: int, rate: float = 0.0) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.load", "--port", str(port), "--ca", str(ca), "--mode", mode,
            "--duration", str(duration), "--warmup", str(warmup), "--connections", str(connections)]
    for r in requests:
        args += ["--request", r]
    if rate:
        args += ["--rate", str(rate)]
    if (os.cpu_count() or 1) > 1:
        args += ["--cpu", str(LOAD_CPU)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=REPO, timeout=duration * 3 + 120)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


ROUNDS = 3


def measure_handlers(targets: dict[str, int], ca: Path, workloads: dict[str, list[str]],
                     duration: float) -> dict[str, dict[str, Any]]:
    """Each workload against each target (name -> port) in alternating rounds, so that whatever
    else loads the machine meanwhile weighs on all alike; the first target's rate as a fraction of each
    other's is taken round by round (results["ratio"][other][workload])."""
    results: dict[str, dict[str, Any]] = {t: {} for t in targets}
    first, *others = targets
    ratios: dict[str, dict[str, list[float]]] = {other: {} for other in others}
    for name, requests in workloads.items():
        rounds: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
        for _ in range(ROUNDS):
            for target, port in targets.items():
                rounds[target].append(run_load(port, ca, requests, mode="closed", duration=duration / ROUNDS,
                                               warmup=0.5, connections=8))
            for other in others:
                ratios[other].setdefault(name, []).append(rounds[first][-1]["rate"] / rounds[other][-1]["rate"])
        for target, port in targets.items():
            rates = [r["rate"] for r in rounds[target]]
            half = statistics.median(rates) / 2
            paced = run_load(port, ca, requests, mode="open", duration=duration, warmup=1.0, connections=32,
                             rate=half)
            results[target][name] = {"saturation_rps": round(statistics.median(rates), 1), "rounds": rates,
                                     "client_cpu": max(r["client_cpu"] for r in rounds[target]), "half_rate": paced}
            log(f"  {target} {name}: {statistics.median(rates):.0f} req/s saturated (rounds {rates}); "
                f"at {half:.0f}/s p50 {paced['p50_ms']} p99 {paced['p99_ms']} ms")
    results["ratio"] = {other: {name: round(statistics.median(values), 3) for name, values in by_name.items()}
                        for other, by_name in ratios.items()}
    results["ratio_rounds"] = {other: {name: [round(v, 3) for v in values] for name, values in by_name.items()}
                               for other, by_name in ratios.items()}
    return results


def start_null_server(work: Path, cert_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = spawn([sys.executable, "-m", "bench.null_server", "--port", str(port), "--cert-dir", str(cert_dir)],
                 work / "null.log", cwd=REPO)
    wait_https(f"https://127.0.0.1:{port}/healthz", cert_dir / "ca.crt", 30, proc=proc, what="null webhook")
    return proc, port


def handlers_part(work: Path, scale: Scale, duration: float) -> tuple[dict[str, Any], dict[str, Any]]:
    objects = cluster_state(scale)
    state = write_state(work / "state.json", objects)
    pods, mutated = work / "pods.jsonl", work / "pods-mutated.jsonl"
    pods.write_bytes(b"\n".join(reviews := pod_reviews(scale)))
    mutated.write_bytes(b"\n".join(as_mutated(reviews, objects)))
    del objects
    nads = work / "nads.jsonl"
    nads.write_bytes(b"\n".join(nad_reviews(scale)))
    workloads = {"nad": [f"/validate={nads}"], "pod": [f"/mutate={pods}", f"/validate={mutated}"]}

    # The same server with every rule off and no readiness affinity: what the envelope (HTTP, TLS,
    # AdmissionReview in and out, metrics, deadlines) costs apart from the rules and the mutation.
    rules_off = work / "rules-off.yaml"
    rules_off.write_text(json.dumps({"readinessAffinity": False, "rules": {rule: "off" for rule in registered()}}))
    server = WebhookServer(work / "ours", ["--cluster-state", str(state)])
    bare = WebhookServer(work / "rules-off", ["--cluster-state", str(state), "--policy", str(rules_off)])
    started = time.perf_counter()
    start_server(server)
    load_s = time.perf_counter() - started
    assert server.proc is not None
    pin(server.proc.pid, SERVER_CPU)
    scale_results: dict[str, Any] = {"state_objects": {"nodes": scale.nodes, "nads": scale.nads, "pods": scale.pods},
                                     "state_file_mib": round(state.stat().st_size / 2**20, 1),
                                     "serve_start_s": round(load_s, 2), "rss_after_load": rss_mib(server.proc.pid)}
    scale_results["rss_mib"] = scale_results["rss_after_load"]["VmRSS"]
    log(f"serve --cluster-state up in {load_s:.1f}s, RSS {scale_results['rss_mib']} MiB")
    bare.cert_dir = server.cert_dir  # one CA for the load generator
    null, null_port = start_null_server(work, server.cert_dir)
    try:
        start_server(bare)
        assert bare.proc is not None
        for proc in (bare.proc, null):
            pin(proc.pid, SERVER_CPU)
        log("our webhook, the same with every rule off, and the null webhook (the floor), alternating:")
        measured = measure_handlers({"ours": server.port, "rules_off": bare.port, "floor": null_port},
                                    server.ca_file, workloads, duration)
        scale_results["rss_after_load_test"] = rss_mib(server.proc.pid)
    finally:
        server.stop()
        bare.stop()
        terminate(null, 20)
    scale_results["check_state_file"] = check_cli(["--cluster-state", str(state)])
    log(f"check --cluster-state: {scale_results['check_state_file']}")
    handlers: dict[str, Any] = {}
    for name in workloads:
        handlers[name] = {"ours": measured["ours"][name], "rules_off": measured["rules_off"][name],
                          "floor": measured["floor"][name], "ratio_to_floor": measured["ratio"]["floor"][name],
                          "ratio_to_floor_rounds": measured["ratio_rounds"]["floor"][name],
                          "ratio_to_rules_off": measured["ratio"]["rules_off"][name],
                          "rules_off_ratio_to_floor": round(measured["rules_off"][name]["saturation_rps"]
                                                            / measured["floor"][name]["saturation_rps"], 3)}
    handlers["definition"] = ("pod: a review is one HTTP request; /mutate and /validate of the same pod alternate, "
                              "so pods/s is half of reviews/s. nad: /validate of a new NAD, 1 in 10 overlapping. "
                              "rules_off: our server with every rule off and readinessAffinity false.")
    return handlers, scale_results


#: Runs the CLI and writes its peak resident memory (VmHWM, KiB) to the file named by its first argument.
#: Neither getrusage nor wait4 would do: Linux keeps across exec the peak of the process forked from
#: the benchmark, which holds the whole cluster state.
_PEAK_OF_CLI = """
import atexit, pathlib, re, sys
out = pathlib.Path(sys.argv.pop(1))
status = pathlib.Path("/proc/self/status")
atexit.register(lambda: out.write_text(re.search(r"VmHWM:\\s+(\\d+)", status.read_text())[1]))
from webhook.cli import main
sys.exit(main(sys.argv[1:]))
"""


def check_cli(state_args: Sequence[str]) -> dict[str, Any]:
    """`multus-webhook check` of the example manifests against a cluster state (``state_args``): the CI
    interface at the cluster's scale, its time and its peak resident memory."""
    with tempfile.NamedTemporaryFile() as peak:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _PEAK_OF_CLI, peak.name, "check", "--output", "json",
                               str(REPO / "examples"), *state_args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        seconds = time.perf_counter() - t
        if done.returncode not in (0, 1):
            raise RuntimeError(f"check {' '.join(state_args)} failed: {done.stderr}")
        return {"seconds": round(seconds, 2), "peak_rss_mib": round(int(Path(peak.name).read_text()) / 1024, 1)}


def start_server(server: WebhookServer) -> None:
    """WebhookServer.start with a longer wait for /healthz (a big state loads before serving)."""
    server.proc = spawn(
        [sys.executable, "-m", "webhook.cli", "serve", "--host", "127.0.0.1", "--port", str(server.port),
         "--cert-dir", str(server.cert_dir), *server.extra_args],
        server.dir / "webhook.log", env=standalone_env(), cwd=REPO,
    )
    wait_https(f"{server.url}/healthz", server.ca_file, 300, proc=server.proc, what="multus-webhook serve")


# --- 4: overlap queries -----------------------------------------------------------------------------


def overlap_queries(scale: Scale, count: int = 20_000) -> dict[str, Any]:
    from webhook.cluster.static import StaticClusterView
    from webhook.cni.addresses import parse_ip
    from webhook.cni.range_index import Probe

    view = StaticClusterView(nad(i, scale) for i in range(scale.nads))
    index = view.ranges
    rng = random.Random(12)
    times: list[float] = []
    probe = Probe()
    found = 0
    for _ in range(count):
        block = rng.randrange(60_000)
        prefix = rng.choice((24, 24, 24, 22, 28))
        span = 1 << (32 - prefix)
        base = (10 << 24) + block * 256
        base -= base % span
        first, last = parse_ip(f"{base >> 24}.{(base >> 16) & 255}.{(base >> 8) & 255}.{base & 255}"), None
        end = base + span - 1
        last = parse_ip(f"{end >> 24}.{(end >> 16) & 255}.{(end >> 8) & 255}.{end & 255}")
        assert first is not None
        assert last is not None
        t = time.perf_counter()
        hits = index.overlapping(first, last, probe)
        times.append((time.perf_counter() - t) * 1000)
        found += len(hits)
    result = percentiles(times)
    result.update({"ranges_indexed": len(index), "queries": count, "mean_found": round(found / count, 2),
                   "mean_compared": round(probe.compared / count, 1)})
    return result


def node_events(scale: Scale, count: int = 5_000) -> dict[str, Any]:
    """The store's cost of one watch event among ``scale.nodes`` nodes: a heartbeat (a MultusNodeState
    whose heartbeatTime moved: nothing the rules see changes) and a Node whose ready label changed (the
    node list is published again), each reduced and published as a watch event would be."""
    from webhook.cluster.store import NODE, NODE_STATE, ClusterStore

    store = ClusterStore()
    store.upsert_all([(NODE, node(i)) for i in range(scale.nodes)]
                     + [(NODE_STATE, node_state(i)) for i in range(scale.nodes)])
    rng = random.Random(13)
    result: dict[str, Any] = {"nodes": scale.nodes, "events": count}
    for what in ("heartbeat", "node_label"):
        times: list[float] = []
        for k in range(count):
            i = rng.randrange(scale.nodes)
            if what == "heartbeat":
                kind, obj = NODE_STATE, node_state(i)
                obj["status"]["heartbeatTime"] = f"2026-01-01T01:{k // 60 % 60:02d}:{k % 60:02d}Z"
            else:
                # One of our labels (the store keeps no other), on a node not changed before.
                kind, obj = NODE, node(k % scale.nodes)
                obj["metadata"]["resourceVersion"] = str(scale.nodes + k)
                obj["metadata"]["labels"][READY_LABEL] = "false"
            t = time.perf_counter()
            store.upsert(kind, obj)
            times.append((time.perf_counter() - t) * 1000)
        result[what] = percentiles(times)
    return result


def pod_events(scale: Scale, count: int = 2_000) -> dict[str, Any]:
    """The store's cost of pods when most of them use one NAD, as in a cluster with one shared
    secondary network (the cluster state above spreads its pods over 10,000 NADs): the sync of
    ``scale.pods`` such pods, a pod deleted and created again as watch events would be, and the
    validation of a DELETE of that NAD (which names the pods still using it)."""
    from webhook.cluster.static import StaticClusterView
    from webhook.cluster.store import NAD
    from webhook.rules import Policy, Subject, evaluate

    ns = namespace(0)
    shared = nad(0, scale)
    pods = [pod(f"app-{p:05d}", ns, shared["metadata"]["name"], node_name=None) for p in range(scale.pods)]
    t = time.perf_counter()
    view = StaticClusterView([shared, *pods])
    result: dict[str, Any] = {"pods": scale.pods, "nads": 1, "events": count,
                              "sync_s": round(time.perf_counter() - t, 3)}
    rng = random.Random(14)
    deleted: list[float] = []
    created: list[float] = []
    for _ in range(count):
        obj = pods[rng.randrange(scale.pods)]
        t = time.perf_counter()
        view.remove(obj)
        deleted.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        view.put(obj)
        created.append((time.perf_counter() - t) * 1000)
    result["delete"] = percentiles(deleted)
    result["create"] = percentiles(created)
    subject = Subject(shared, NAD, operation="DELETE", view=view)
    reviews: list[float] = []
    for _ in range(20):
        t = time.perf_counter()
        findings = evaluate(subject, Policy())
        reviews.append((time.perf_counter() - t) * 1000)
    if not any(f.rule == "nad-in-use" and f"used by {scale.pods} pod(s)" in f.message for f in findings):
        raise RuntimeError(f"pod_events: the NAD's users were not found: {findings}")
    result["nad_delete_review"] = percentiles(reviews)
    return result


# --- 3, 4: the real apiserver -------------------------------------------------------------------------


class Api:
    """A small asyncio client of the apiserver with the admin certificate; many requests in flight."""

    def __init__(self, cp: ControlPlane) -> None:
        self.base = cp.url
        self.ctx = ssl.create_default_context(cafile=str(cp.pki / "ca.crt"))
        self.ctx.load_cert_chain(cp.pki / "admin.crt", cp.pki / "admin.key")

    async def post_all(self, items: Iterable[tuple[str, dict[str, Any]]], concurrency: int = 8, *,
                       method: str = "POST", content_type: str = "application/json",
                       ) -> tuple[list[float], dict[int, int]]:
        """POST (or ``method``) every (path, object); returns each request's latency (ms), in the order of
        ``items``, and the status counts."""
        queue = list(enumerate(items))[::-1]
        latencies = [0.0] * len(queue)
        statuses: dict[int, int] = {}
        connector = aiohttp.TCPConnector(ssl=self.ctx, limit=concurrency)
        async with aiohttp.ClientSession(self.base, connector=connector) as session:
            async def worker() -> None:
                while queue:
                    i, (path, obj) = queue.pop()
                    body = json.dumps(obj).encode()
                    t = time.perf_counter()
                    async with session.request(method, path, data=body,
                                               headers={"Content-Type": content_type}) as resp:
                        await resp.read()
                    latencies[i] = (time.perf_counter() - t) * 1000
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, statuses

    async def get(self, path: str) -> str:
        async with aiohttp.ClientSession(self.base, connector=aiohttp.TCPConnector(ssl=self.ctx)) as session, \
                session.get(path) as resp:
            return await resp.text()


Histogram = dict[tuple[str, ...], tuple[dict[float, float], float, float]]


def histograms(text: str, metric: str, keys: Sequence[str], where: str = "") -> Histogram:
    """A Prometheus histogram from a /metrics page: (label values of ``keys``) -> (cumulative buckets,
    sum, count); series differing in other labels (rejected="true"/"false") are added up."""
    out: Histogram = {}
    for line in text.splitlines():
        if not line.startswith(metric) or where not in line:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        key = tuple(labels.get(k, "") for k in keys)
        buckets, total, count = out.get(key, ({}, 0.0, 0.0))
        value = float(line.rsplit(" ", 1)[1])
        if line.startswith(metric + "_bucket"):
            buckets[float(labels["le"])] = buckets.get(float(labels["le"]), 0.0) + value
        elif line.startswith(metric + "_sum"):
            total += value
        elif line.startswith(metric + "_count"):
            count += value
        out[key] = (buckets, total, count)
    return out


def summary(before: Histogram, after: Histogram) -> dict[str, Any]:
    """What was observed between two readings: count, mean and quantiles (bucket upper bounds, as coarse
    as the buckets are)."""
    out: dict[str, Any] = {}
    for key, (buckets, total, count) in after.items():
        old_buckets, old_total, old_count = before.get(key, ({}, 0.0, 0.0))
        n = count - old_count
        if not n:
            continue
        ordered = sorted((le, v - old_buckets.get(le, 0.0)) for le, v in buckets.items())

        def upper(q: float, ordered: list[tuple[float, float]] = ordered, n: float = n) -> float:
            return next(le for le, v in ordered if v >= q * n) * 1000

        out[" ".join(key)] = {"count": int(n), "mean_ms": round((total - old_total) / n * 1000, 3),
                              "p50_le_ms": upper(0.5), "p99_le_ms": upper(0.99)}
    return out


def apiserver_webhooks(text: str) -> Histogram:
    """apiserver_admission_webhook_admission_duration_seconds of pod creations, per webhook and type."""
    return histograms(text, "apiserver_admission_webhook_admission_duration_seconds", ("name", "type"),
                      'operation="CREATE"')


def own_answers(server: WebhookServer) -> Histogram:
    """Our server's multus_webhook_request_duration_seconds per endpoint (body read to answer)."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(f"{server.url}/metrics", context=ctx, timeout=10) as resp:
        text = resp.read().decode()
    return histograms(text, "multus_webhook_request_duration_seconds", ("endpoint",))


def pod_objects(scale: Scale, prefix: str, count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ns = namespace(rng.randrange(scale.namespaces))
        picks = rng.sample(range(scale.nads_per_namespace), 1 + i % 2)
        labels = {"multus-webhook.io/network-profile": "standard"} if i % 2 else None
        obj = pod(f"{prefix}-{i:05d}", ns, ", ".join(f"net-{k:03d}" for k in picks), node_name=None, labels=labels)
        del obj["metadata"]["managedFields"]  # the apiserver writes its own
        out.append((f"/api/v1/namespaces/{ns}/pods", obj))
    return out


#: Pods are created in turn in three namespaces, the same pod each time: team-NNN, which our webhooks
#: see, null-NNN, which the null webhook sees, and none-NNN, which no webhook sees. Taken in turn, the
#: machine's noise weighs on the three alike; spread over as many namespaces each, so does the
#: apiserver's per-namespace work (LimitRanger looks LimitRanges up live, per namespace every 30 s:
#: ~90 ms a time here, which landed on our arm alone while the others used one namespace each).
ARMS = ("ours", "null", "none")
ARM_LABEL = "bench.multus-webhook.io/arm"


def arm_namespace(arm: str, team_namespace: str) -> str:
    return team_namespace if arm == "ours" else team_namespace.replace("team-", f"{arm}-")


def interleaved(scale: Scale, prefix: str, count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` pods (ours, null, none, ours, ...), each the same pod in the three arms' namespaces."""
    out = []
    for _, obj in pod_objects(scale, prefix, count // len(ARMS), seed):
        for arm in ARMS:
            ns = arm_namespace(arm, obj["metadata"]["namespace"])
            out.append((f"/api/v1/namespaces/{ns}/pods", {**obj, "metadata": {**obj["metadata"], "namespace": ns}}))
    return out


def arm_namespaces(scale: Scale) -> list[str]:
    return [arm_namespace(arm, namespace(n)) for n in range(scale.namespaces) for arm in ARMS]


def namespace_objects(names: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """Namespaces, those of the null and none arms labelled with their arm."""
    out = []
    for name in names:
        meta: dict[str, Any] = {"name": name}
        arm = name.split("-", 1)[0]
        if arm in ARMS:
            meta["labels"] = {ARM_LABEL: arm}
        out.append(("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))
    return out


def limit_ranges(names: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """An empty LimitRange in each namespace: without one, LimitRanger lists LimitRanges from etcd on a
    pod create, once per namespace every 30 s (~90 ms each on this machine), and that, not any
    webhook, made the p99 of every arm."""
    return [(f"/api/v1/namespaces/{name}/limitranges",
             {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "bench"},
              "spec": {"limits": [{"type": "Container"}]}}) for name in names]


def register_arms(cp: ControlPlane, ours: WebhookServer, null_port: int) -> None:
    """Our webhook configurations, leaving the other arms' namespaces out, and the null webhook on the
    null arm's pods with the same settings as our pod webhooks."""
    docs = webhook_configurations(ours.url, ours.ca_file.read_bytes())
    null_docs = webhook_configurations(f"https://127.0.0.1:{null_port}", ours.ca_file.read_bytes())
    for doc in null_docs:
        doc["metadata"]["name"] = "bench-null"
        doc["webhooks"] = [h for h in doc["webhooks"] if h["name"] == "pods.multus-webhook.io"]
        for hook in doc["webhooks"]:
            hook["name"] = "pods.null.bench"  # apart in the apiserver's metrics
            hook["namespaceSelector"] = {"matchLabels": {ARM_LABEL: "null"}}
    for doc in docs:
        for hook in doc["webhooks"]:
            selector = hook.setdefault("namespaceSelector", {})
            selector.setdefault("matchExpressions", []).append({"key": ARM_LABEL, "operator": "DoesNotExist"})
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs + null_docs}))


def create_cluster(api: Api, scale: Scale) -> dict[str, dict[int, int]]:
    """The objects of the --cluster-state file, created in the apiserver (without what the apiserver
    writes itself). Status counts per kind."""
    paths = {"Node": "/api/v1/nodes",
             "MultusNodeState": "/apis/multus-webhook.io/v1alpha1/namespaces/{ns}/multusnodestates",
             "NetworkAttachmentDefinition": "/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions",
             "Pod": "/api/v1/namespaces/{ns}/pods"}
    items: dict[str, list[tuple[str, dict[str, Any]]]] = {kind: [] for kind in paths}
    states = []
    for obj in cluster_state(scale):
        if obj["kind"] not in paths:
            continue  # the NetworkProfiles are there already
        meta = {k: v for k, v in obj["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
        items[obj["kind"]].append((paths[obj["kind"]].format(ns=meta.get("namespace")), {**obj, "metadata": meta}))
        if obj["kind"] == "MultusNodeState":  # status is a subresource: not written by the create
            # A heartbeat of now, which `--agent-interval 3600` keeps fresh for the whole run: the
            # controller in serve then finds every node ready, as the file says, and writes nothing.
            status = {**obj["status"], "heartbeatTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            states.append((f"{items['MultusNodeState'][-1][0]}/{meta['name']}/status", {"status": status}))
    statuses = {kind: asyncio.run(api.post_all(objects))[1] for kind, objects in items.items()}
    statuses["MultusNodeState status"] = asyncio.run(
        api.post_all(states, method="PATCH", content_type="application/merge-patch+json"))[1]
    return statuses


def heartbeats(api: Api, pid: int, scale: Scale, settle: float = 2.0) -> dict[str, Any]:
    """Every agent's heartbeat once (a merge patch of its MultusNodeState's heartbeatTime), as fast as
    the apiserver takes them, while serve (cache and controller, process ``pid``) follows them: the CPU
    serve spends per heartbeat it hears, watch decoding and controller look included."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = "/apis/multus-webhook.io/v1alpha1/namespaces/{ns}/multusnodestates/node-{i:05d}/status"
    items = [(path.format(ns=STATE_NAMESPACE, i=i), {"status": {"heartbeatTime": stamp}}) for i in range(scale.nodes)]
    before, t = cpu_seconds(pid), time.perf_counter()
    _, statuses = asyncio.run(api.post_all(items, method="PATCH", content_type="application/merge-patch+json"))
    elapsed = time.perf_counter() - t
    time.sleep(settle)  # the last events reach the cache and the controller
    cpu = cpu_seconds(pid) - before
    return {"events": len(items), "statuses": statuses, "seconds": round(elapsed, 2),
            "rate_per_s": round(len(items) / elapsed), "serve_cpu_s": round(cpu, 2),
            "serve_cpu_ms_per_event": round(cpu / len(items) * 1000, 3),
            "serve_core_share": round(cpu / elapsed, 3)}


def apiserver_part(work: Path, scale: Scale, pods: int, concurrency: int) -> tuple[dict[str, Any], dict[str, Any]]:
    results: dict[str, Any] = {"pods_per_run": pods, "client_concurrency": concurrency}
    scale_results: dict[str, Any] = {}
    with ControlPlane(work / "controlplane") as cp:
        api = Api(cp)
        namespaces = [namespace(n) for n in range(scale.namespaces)]
        asyncio.run(api.post_all(namespace_objects([*arm_namespaces(scale), STATE_NAMESPACE])))
        asyncio.run(api.post_all(limit_ranges(arm_namespaces(scale))))
        profiles = [(f"/apis/multus-webhook.io/v1alpha1/namespaces/{n}/networkprofiles", profile(n))
                    for n in namespaces]
        asyncio.run(api.post_all(profiles))
        t = time.perf_counter()
        statuses = create_cluster(api, scale)
        created_s = time.perf_counter() - t
        results["cluster_created"] = {"seconds": round(created_s, 1), "statuses": statuses,
                                      "how": "POST each object (and PATCH each MultusNodeState's status), 8 "
                                             "requests in flight (aiohttp)"}
        log(f"created the cluster state in {created_s:.1f}s {statuses}")
        scale_results["check_kubeconfig"] = check_cli(["--kubeconfig", str(cp.kubeconfig)])
        log(f"check --kubeconfig: {scale_results['check_kubeconfig']}")

        # The live cache: start, time to /readyz (first list of everything done). serve as deployed,
        # its controller included; the states' heartbeats stay fresh (see create_cluster).
        server = WebhookServer(work / "live", ["--kubeconfig", str(cp.kubeconfig), "--agent-interval", "3600"])
        t = time.perf_counter()
        start_server(server)
        assert server.proc is not None
        wait_https(f"{server.url}/readyz", server.ca_file, 300, proc=server.proc, what="live cache sync")
        sync_s = time.perf_counter() - t
        scale_results["live_sync_s"] = round(sync_s, 2)
        scale_results["live_rss_after_sync"] = rss_mib(server.proc.pid)
        # The controller decides from the cache's own Nodes and states; give it its first look at each.
        time.sleep(CONTROLLER_SETTLE)
        scale_results["live_rss_with_controller"] = rss_mib(server.proc.pid)
        scale_results["live_rss_mib"] = scale_results["live_rss_with_controller"]["VmRSS"]
        log(f"live cache synced the cluster state in {sync_s:.2f}s (from process start), "
            f"RSS {scale_results['live_rss_after_sync']}; {CONTROLLER_SETTLE}s later, the controller "
            f"settled, {scale_results['live_rss_with_controller']}")
        null, null_port = start_null_server(work, server.cert_dir)
        try:
            register_arms(cp, server, null_port)
            time.sleep(2)  # the apiserver picks webhook configurations up from an informer
            asyncio.run(api.post_all(interleaved(scale, "warm", 300, 20), concurrency))
            before, ours_before = apiserver_webhooks(asyncio.run(api.get("/metrics"))), own_answers(server)
            latencies, run_statuses = asyncio.run(api.post_all(interleaved(scale, "run", len(ARMS) * pods, 21),
                                                               concurrency))
            after, ours = apiserver_webhooks(asyncio.run(api.get("/metrics"))), own_answers(server)
            scale_results["heartbeats"] = beats = heartbeats(api, server.proc.pid, scale)
            log(f"{beats['events']} heartbeats at {beats['rate_per_s']}/s: serve spent "
                f"{beats['serve_cpu_ms_per_event']} ms of CPU per event ({beats['serve_core_share']} of a core) "
                f"{beats['statuses']}")
        finally:
            server.stop()
            terminate(null, 20)
        arms = {arm: percentiles(latencies[i::len(ARMS)]) for i, arm in enumerate(ARMS)}
        means = {arm: statistics.fmean(latencies[i::len(ARMS)]) for i, arm in enumerate(ARMS)}

        def added(arm: str, base: str) -> dict[str, Any]:
            return {"p50_ms": round(arms[arm]["p50_ms"] - arms[base]["p50_ms"], 3),
                    "p99_ms": round(arms[arm]["p99_ms"] - arms[base]["p99_ms"], 3),
                    "p99_ms_95_interval": p99_difference_interval(latencies[ARMS.index(arm)::len(ARMS)],
                                                                  latencies[ARMS.index(base)::len(ARMS)]),
                    "mean_ms": round(means[arm] - means[base], 3)}

        results.update({
            "pod_create": arms, "statuses": run_statuses,
            "added_p50_ms": added("ours", "none")["p50_ms"], "added_p99_ms": added("ours", "none")["p99_ms"],
            "added": {"ours_over_none": added("ours", "none"), "null_over_none": added("null", "none"),
                      "ours_over_null": added("ours", "null")},
            "apiserver_webhook_duration": summary(before, after),
            "webhook_own_duration": summary(ours_before, ours),
            "how": "webhook: serve --kubeconfig (live cache and controller), unpinned; pods POSTed by an aiohttp "
                   f"client, {concurrency} in flight, the same pod in turn to a namespace our webhooks see, one the "
                   "null webhook (bench/null_server.py, mutating + validating) sees and one no webhook sees",
        })
        log("apiserver pod create p50/p99 ms: " + ", ".join(f"{arm} {arms[arm]['p50_ms']}/{arms[arm]['p99_ms']}"
                                                             for arm in ARMS)
            + f"; apiserver's webhook calls {results['apiserver_webhook_duration']}; our own answer time "
            f"{results['webhook_own_duration']}")
    return results, scale_results


# --- the report -----------------------------------------------------------------------------------


def lookup(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    compare: dict[str, Callable[[float, float], bool]] = {">=": lambda v, b: v >= b, "<=": lambda v, b: v <= b}
    out = []
    for name, key, op, bound in TARGETS:
        value = lookup(results, key)
        met = None if value is None else compare[op](value, bound)
        out.append({"target": name, "key": key, "bound": f"{op} {bound:g}", "value": value, "met": met})
    return out


def table(results: dict[str, Any], previous: dict[str, Any] | None) -> str:
    rows = [("measure", "value", "previous run", "target", "met")]
    for t in results["targets"]:
        prev = lookup(previous, t["key"]) if previous else None
        met = {True: "yes", False: "NO", None: "n/a"}[t["met"]]
        rows.append((t["target"], _fmt(t["value"]), _fmt(prev), t["bound"], met))
    h = results.get("handlers", {})
    for name in ("nad", "pod"):
        if name in h:
            w = h[name]
            spread = w.get("ratio_to_floor_rounds")
            rows.append((f"{name}: ours / floor req/s (ratio per round)", f"{w['ours']['saturation_rps']:.0f} / "
                         f"{w['floor']['saturation_rps']:.0f} = {w['ratio_to_floor']:.2f}"
                         + (f" ({min(spread):.2f}..{max(spread):.2f})" if spread else ""), "", "", ""))
            if "rules_off" in w:
                rows.append((f"{name}: rules off / floor req/s", f"{w['rules_off']['saturation_rps']:.0f} / "
                             f"{w['floor']['saturation_rps']:.0f} = {w['rules_off_ratio_to_floor']:.2f}", "", "",
                             ""))
            rows.append((f"{name}: p50/p95/p99 ms at half rate (ours)", "{p50_ms}/{p95_ms}/{p99_ms}".format(
                **w["ours"]["half_rate"]), "", "", ""))
            rows.append((f"{name}: p50/p95/p99 ms at half rate (floor)", "{p50_ms}/{p95_ms}/{p99_ms}".format(
                **w["floor"]["half_rate"]), "", "", ""))
    beats = results.get("scale", {}).get("heartbeats")
    if beats:
        rows.append(("live serve: CPU per MultusNodeState heartbeat (ms), share of a core",
                     f"{beats['serve_cpu_ms_per_event']} at {beats['rate_per_s']}/s, {beats['serve_core_share']}",
                     "", "", ""))
    events = results.get("scale", {}).get("node_events")
    if events:
        rows.append((f"store: one node event among {events['nodes']} nodes, p50/p99 ms",
                     f"heartbeat {events['heartbeat']['p50_ms']}/{events['heartbeat']['p99_ms']}, node label "
                     f"{events['node_label']['p50_ms']}/{events['node_label']['p99_ms']}", "", "", ""))
    checks = [(how, results.get("scale", {}).get(key)) for how, key in (
        ("--cluster-state (JSON List)", "check_state_file"), ("--kubeconfig", "check_kubeconfig"))]
    if any(c for _, c in checks):
        rows.append(("multus-webhook check of examples/ against the cluster: s, peak RSS MiB",
                     "; ".join(f"{how} {c['seconds']} s, {c['peak_rss_mib']}" for how, c in checks if c), "", "", ""))
    users = results.get("scale", {}).get("pod_events")
    if users:
        rows.append((f"store: {users['pods']} pods on one NAD: sync s; pod delete/create p99 ms; "
                     "NAD DELETE review p50 ms",
                     f"{users['sync_s']}; {users['delete']['p99_ms']}/{users['create']['p99_ms']}; "
                     f"{users['nad_delete_review']['p50_ms']}", "", "", ""))
    a = results.get("apiserver", {})
    if "pod_create" in a:
        rows.append(("apiserver pod create p50/p99 ms: ours, null, none", ", ".join(
            f"{a['pod_create'][arm]['p50_ms']}/{a['pod_create'][arm]['p99_ms']}" for arm in ARMS), "", "", ""))
        for name, d in a["added"].items():
            interval = d.get("p99_ms_95_interval")
            rows.append((f"added p50/p99/mean ms: {name.replace('_', ' ')} (p99's 95% interval)",
                         f"{d['p50_ms']}/{d['p99_ms']}/{d['mean_ms']}" + (f" ({interval[0]}..{interval[1]})"
                                                                          if interval else ""), "", "", ""))
        for source, key in (("apiserver metric", "apiserver_webhook_duration"), ("our metric", "webhook_own_duration")):
            for name, m in a.get(key, {}).items():
                rows.append((f"{source} {name}", f"n={m['count']} mean {m['mean_ms']} ms, p50<={m['p50_le_ms']:g} "
                             f"p99<={m['p99_le_ms']:g} ms", "", "", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) and value < 10 else f"{value:.0f}" \
        if isinstance(value, float) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tenth of the scale and short runs (a smoke run)")
    p.add_argument("--duration", type=float, help="seconds per load phase (default 8, quick 3)")
    p.add_argument("--skip-apiserver", action="store_true", help="leave out part 3 and the live cache sync")
    p.add_argument("--pods", type=int, help="pods per apiserver run (default 2000)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="pod creations in flight on the apiserver (1: the latency one kubectl apply sees; more "
                        "measures two cores shared by etcd, the apiserver, the webhook and the client)")
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--note", default="", help="recorded with the run (what changed)")
    args = p.parse_args(argv)
    scale = Scale(nodes=500, nads=1000, pods=5000, namespaces=10) if args.quick else Scale()
    duration = args.duration or (3.0 if args.quick else 8.0)
    pods = args.pods or (200 if args.quick else 2000)

    results: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": args.note,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "implementation": platform.python_implementation(), "platform": platform.platform(),
                    "cpu_model": _cpu_model(), "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU},
        "scale": {},
        "quick": args.quick,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="multus-webhook-bench-") as tmp:
        work = Path(tmp)
        log("handlers (parts 1, 2) and RSS")
        results["handlers"], results["scale"] = handlers_part(work, scale, duration)
        log("overlap queries")
        results["scale"]["overlap_query"] = overlap_queries(scale)
        log(f"  p50 {results['scale']['overlap_query']['p50_ms']} p99 {results['scale']['overlap_query']['p99_ms']} ms")
        log("node events in the store")
        results["scale"]["node_events"] = events = node_events(scale)
        log(f"  p50/p99 ms: heartbeat {events['heartbeat']['p50_ms']}/{events['heartbeat']['p99_ms']}, "
            f"node label {events['node_label']['p50_ms']}/{events['node_label']['p99_ms']}")
        log("pods on one NAD in the store")
        results["scale"]["pod_events"] = users = pod_events(scale)
        log(f"  sync {users['sync_s']} s; p50/p99 ms: delete {users['delete']['p50_ms']}/{users['delete']['p99_ms']}, "
            f"create {users['create']['p50_ms']}/{users['create']['p99_ms']}")
        if not args.skip_apiserver:
            log("real apiserver (part 3) and live cache sync")
            results["apiserver"], live = apiserver_part(work, scale, pods, args.concurrency)
            results["scale"].update(live)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = check_targets(results)

    previous: dict[str, Any] | None = None
    history: list[dict[str, Any]] = []
    if args.output.exists():
        try:
            old = json.loads(args.output.read_text())
            previous = old.get("latest")
            history = old.get("history", [])
        except (ValueError, AttributeError):
            pass
    if previous is not None:
        history = [_brief(previous), *history][:HISTORY]
    print(table(results, previous))
    if not args.quick:
        args.output.write_text(json.dumps({"latest": results, "history": history}, indent=1) + "\n")
        log(f"wrote {args.output}")
    return 0


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    """What the history keeps of an earlier run: when, what changed, and the target values."""
    return {"timestamp": run.get("timestamp"), "note": run.get("note"),
            "targets": {t["key"]: t["value"] for t in run.get("targets", [])}}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
