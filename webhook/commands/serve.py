"""`multus-webhook serve`: the admission webhook server (HTTPS only), with the watch-fed cluster cache,
the node-readiness controller and (optionally) self-managed certificates."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from prometheus_client import Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from webhook.admission.handlers import AdmissionContext
from webhook.certmanager import CA_BUNDLE_CHECK_INTERVAL, CHECK_INTERVAL, SelfManagedCertificates, Settings
from webhook.cluster.live import POLICY_CONFIGMAP, STATE_NAMESPACE, LiveClusterView
from webhook.cluster.static import StaticClusterView
from webhook.cluster.store import NAD, POD
from webhook.commands import controller as controller_command
from webhook.commands.common import cluster_client, load_policy, own_namespace
from webhook.controller import metrics as controller_metrics
from webhook.controller.controller import Controller, ControllerConfig
from webhook.documents import DocumentError
from webhook.kube import status_message
from webhook.rules import Policy, PolicyError, registered
from webhook.server import (
    BODY_TIMEOUT,
    DEADLINE,
    DEADLINE_MARGIN,
    IDLE_TIMEOUT,
    CannotListen,
    ServerState,
    serve_forever,
)
from webhook.tls import new_context

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="run the admission webhook server (HTTPS only)")
    s.add_argument("--port", type=int, default=8443, help="port to listen on (default: %(default)s)")
    s.add_argument("--host", default="",
                   help="address to listen on (default: every address, IPv6 and IPv4: a pod's IP may be either)")
    s.add_argument("--cert-dir", default="certs", help="directory holding tls.crt and tls.key, reloaded on change "
                                                       "(default: %(default)s)")
    s.add_argument("--client-ca", help="answer /validate and /mutate only to clients presenting a certificate signed "
                                       "by this CA bundle (the apiserver's); /healthz, /readyz, /metrics stay open")
    s.add_argument("--client-name", action="append", default=[], metavar="NAME",
                   help="with --client-ca: answer only client certificates with this Common Name (repeatable or "
                        "comma-separated; default: any the CA signed, which for a cluster CA is every kubelet too)")
    s.add_argument("--cluster-state", action="append", metavar="FILE",
                   help="standalone mode: YAML/JSON objects standing for the cluster (repeatable); MultusNodeStates "
                        "count in --namespace only, as when watching")
    s.add_argument("--kubeconfig", metavar="FILE",
                   help="watch the cluster through this kubeconfig (default: in-cluster; $KUBECONFIG is not "
                        "read: give --kubeconfig \"$KUBECONFIG\"; with neither it nor --cluster-state, no cluster: "
                        "the rules that need cluster state are skipped and the controller is off)")
    s.add_argument("--policy", metavar="FILE",
                   help=f"rule severities and settings; the ConfigMap {POLICY_CONFIGMAP} (key 'policy') in the "
                        "cluster overrides it while it exists")
    s.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT, metavar="SECONDS",
                   help="close a connection whose TLS handshake, or request head from its first byte, takes "
                        "longer than this (one with no request under way is kept longer than the apiserver "
                        "keeps idle connections; default: %(default)s)")
    s.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT, metavar="SECONDS",
                   help="answer 408 when a request body takes longer than this to arrive (default: %(default)s)")
    s.add_argument("--deadline", type=float, default=DEADLINE, metavar="SECONDS",
                   help="answer a request without the apiserver's ?timeout= within this; the answer is the "
                        "policy's onTimeout choice when the check has not finished (default: %(default)s)")
    s.add_argument("--deadline-margin", type=float, default=DEADLINE_MARGIN, metavar="SECONDS",
                   help="answer this long before the apiserver's ?timeout= runs out, at most a quarter of it "
                        "(default: %(default)s)")
    s.add_argument("--namespace", default=own_namespace(STATE_NAMESPACE),
                   help="the webhook's namespace: policy ConfigMap, TLS Secret, MultusNodeStates, Lease "
                        "(default: $POD_NAMESPACE, else %(default)s)")
    s.add_argument("--self-managed-certs", action="store_true",
                   help="keep the CA and serving certificate in --tls-secret (created when missing, renewed "
                        "before expiry) and patch the caBundle of our webhook configurations")
    s.add_argument("--tls-secret", default="multus-webhook-tls",
                   help="Secret for --self-managed-certs (default: %(default)s)")
    s.add_argument("--service", default="multus-webhook",
                   help="the Service in front of the webhook, which the self-managed certificate names "
                        "(default: %(default)s)")
    s.add_argument("--cert-check-interval", type=float, default=CHECK_INTERVAL.total_seconds(), metavar="SECONDS",
                   help="how often --self-managed-certs looks at the Secret (renewal due, or renewed by another "
                        "replica; default: %(default)s)")
    s.add_argument("--ca-bundle-check-interval", type=float, default=CA_BUNDLE_CHECK_INTERVAL.total_seconds(),
                   metavar="SECONDS",
                   help="how often, between looks at the Secret, --self-managed-certs checks that both webhook "
                        "configurations trust its CA (two GETs), to put the caBundle back into a configuration "
                        "applied again without one (default: %(default)s)")
    s.add_argument("--no-controller", action="store_true",
                   help="do not run the node-readiness controller in this process")
    controller_command.add_arguments(s)
    s.set_defaults(func=run)


class PolicySource:
    """The policy in force: the ConfigMap's while it exists and parses, else the file's (or defaults).
    A ConfigMap that does not parse keeps the previous policy, so a typo never relaxes the rules.
    Pod repair is on with ``repair`` (--repair) or with the policy in force's ``repair: true``: no
    policy turns off what the flag turned on. A ConfigMap refused is said in the log, in
    multus_webhook_policy_load_success, and in a Warning Event on it (through the controller's recorder,
    while one is attached)."""

    def __init__(self, context: AdmissionContext, base: Policy, *, repair: bool = False,
                 base_source: str = "defaults") -> None:
        self.context = context
        self.base = base
        #: Where ``base`` came from: "file" (--policy) or "defaults".
        self.base_source = base_source
        #: Where the policy in force came from: ``base_source`` or "configmap".
        self.source = base_source
        #: Whether the last policy read (a ConfigMap's) came into force.
        self.loaded = True
        self.repair = repair
        self.controller: Controller | None = None
        #: The ConfigMap last refused and why, until one comes into force; and the (uid,
        #: resourceVersion) last announced by an Event: a relist brings the same one again.
        self._refused: tuple[Mapping[str, Any], str] | None = None
        self._announced: tuple[Any, Any] | None = None
        # The ConfigMap arrives on the cache's thread, maybe while the controller is being attached.
        self._lock = threading.Lock()

    def on_configmap(self, configmap: Mapping[str, Any] | None) -> None:
        if configmap is None:
            self._set(self.base, self.base_source, "policy ConfigMap absent: using the policy file (or the defaults)")
            return
        data = configmap.get("data") if isinstance(configmap.get("data"), Mapping) else {}
        text = data.get("policy") if isinstance(data, Mapping) else None
        if not isinstance(text, str):
            self._refuse(configmap, f"ConfigMap {POLICY_CONFIGMAP} has no 'policy' key")
            return
        try:
            policy = Policy.from_text(text, set(registered()), f"ConfigMap {POLICY_CONFIGMAP}")
        except PolicyError as exc:
            self._refuse(configmap, str(exc))
            return
        self._set(policy, "configmap", f"policy from ConfigMap {POLICY_CONFIGMAP} in force")

    def _refuse(self, configmap: Mapping[str, Any], why: str) -> None:
        log.error("%s; keeping the policy in force", why)
        with self._lock:
            self.loaded = False
            self._refused = (configmap, why)
            self._announce()

    def _announce(self) -> None:
        """The Warning Event for the ConfigMap refused, once per version of it, from the replica that
        holds the controller's lease (every replica reads the ConfigMap; one Event is what the docs
        promise); called with the lock."""
        if self.controller is None or self._refused is None or not self.controller.elector.is_leader():
            return
        configmap, why = self._refused
        meta = configmap.get("metadata")
        version = (meta.get("uid"), meta.get("resourceVersion")) if isinstance(meta, Mapping) else (None, None)
        if version == self._announced:
            return
        self._announced = version
        self.controller.events.emit(configmap, kind="ConfigMap", event_type="Warning", reason="PolicyRejected",
                                    message=f"{why}; keeping the policy in force")

    async def announce_when_leading(self, stop: asyncio.Event) -> None:
        """Sends the Event a replica did not send while another held the lease, once this one holds it:
        the ConfigMap is not read again when leadership moves."""
        assert self.controller is not None  # run only once one is attached
        period = self.controller.config.retry_period
        while not stop.is_set():
            with self._lock:
                self._announce()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    def controller_config(self, config: ControllerConfig, policy: Policy) -> ControllerConfig:
        """Used when the controller is attached and whenever a policy comes into force."""
        return replace(config, repair=self.repair or policy.repair, multus_namespace=policy.multus_namespace)

    def attach(self, controller: Controller) -> None:
        """From now on ``controller`` follows the policy in force, starting with the one in force now
        (a ConfigMap listed before the controller existed included)."""
        with self._lock:
            self.controller = controller
            controller.config = self.controller_config(controller.config, self.context.policy)
            self._announce()  # a ConfigMap refused before the controller existed

    def state(self) -> tuple[bool, str, bool]:
        """(the last policy read came into force, where the policy in force came from, its audit)."""
        with self._lock:
            return self.loaded, self.source, self.context.policy.audit

    def _set(self, policy: Policy, source: str, why: str) -> None:
        with self._lock:
            self.context.policy = policy
            self.source, self.loaded, self._refused = source, True, None
            if self.controller is not None:
                self.controller.config = self.controller_config(self.controller.config, policy)
        log.info("%s", why)


def tls_problem(cert_dir: Path, client_ca: Path | None) -> str | None:
    """Why the server could not listen with these files (its own TLS setup, tried before it listens:
    a traceback otherwise)."""
    cert, key = cert_dir / "tls.crt", cert_dir / "tls.key"
    try:
        new_context(cert, key, None)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot use {cert} with {key}: {exc}"
    if client_ca is not None:
        try:
            new_context(cert, key, client_ca)
        except (OSError, ssl.SSLError) as exc:
            return f"--client-ca {client_ca}: {exc}"
    return None


class PolicyMetrics:
    """The policy in force and whether the last one read came into force, read at each scrape."""

    def __init__(self, source: PolicySource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        loaded, source, audit = self.source.state()
        yield GaugeMetricFamily(
            "multus_webhook_policy_load_success",
            f"1 when the last policy read came into force, 0 when the ConfigMap {POLICY_CONFIGMAP} was refused "
            "(the policy before it stays in force; the log and a Warning Event on it say why).",
            value=1 if loaded else 0)
        info = GaugeMetricFamily(
            "multus_webhook_policy_info",
            "The policy in force (the value is always 1): where it came from (configmap, file or defaults) and "
            "whether audit mode turns denials into warnings.", labels=["source", "audit"])
        info.add_metric([source, "true" if audit else "false"], 1)
        yield info


class SkippedEvents:
    """The watch events the cluster cache could not apply, by kind, read from it at each scrape: a
    counter (it only grows), which a Gauge's set_function could not be."""

    def __init__(self, live: LiveClusterView) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "multus_webhook_cache_skipped_events",
            "Watch events the cluster cache could not apply and skipped, by kind (a bug: the log says which).",
            labels=["kind"])
        for res in self.live.resources:
            family.add_metric([res.kind], self.live.skipped(res.kind))
        yield family


def run(args: argparse.Namespace) -> int:
    if args.cluster_state and args.kubeconfig:
        print("multus-webhook serve: give --cluster-state or --kubeconfig, not both", file=sys.stderr)
        return 2
    client_names = frozenset(n.strip() for arg in args.client_name for n in arg.split(",") if n.strip())
    if client_names and not args.client_ca:
        print("multus-webhook serve: --client-name needs --client-ca (the CA that signs the names' certificates)",
              file=sys.stderr)
        return 2
    if args.cert_check_interval <= 0 or args.ca_bundle_check_interval <= 0:
        print("multus-webhook serve: --cert-check-interval and --ca-bundle-check-interval must be positive",
              file=sys.stderr)
        return 2
    live: LiveClusterView | None = None
    api: Any = None
    try:
        policy = load_policy(args.policy)
        context = AdmissionContext(policy=policy, namespace=args.namespace)
        source = PolicySource(context, policy, repair=args.repair, base_source="file" if args.policy else "defaults")
        if args.cluster_state:
            context.view = StaticClusterView.from_files(args.cluster_state, state_namespace=args.namespace)
        # In a pod, its service account; elsewhere only the cluster named: a server joins the controller's
        # leader election and may label nodes and evict pods, which a workstation shell's $KUBECONFIG
        # (whichever cluster was used last) must not make it do.
        elif args.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST"):
            api = cluster_client("serve", args.kubeconfig)
            if api is None:
                return 2
            live = LiveClusterView(api, state_namespace=args.namespace, on_policy=source.on_configmap)
            context.view = live
        else:
            log.warning("no cluster (no --kubeconfig, in-cluster service account or --cluster-state; $KUBECONFIG "
                        "is not read): the rules that need cluster state are skipped and the controller is off")
        # Its repair setting follows the policy in force once attached (PolicySource.attach).
        controller_config = controller_command.config_from(args, namespace=args.namespace)
    except (PolicyError, DocumentError, ValueError) as exc:
        print(f"multus-webhook serve: {exc}", file=sys.stderr)
        return 2
    certificates: SelfManagedCertificates | None = None
    if args.self_managed_certs:
        if api is None:
            print("multus-webhook serve: --self-managed-certs needs a cluster (--kubeconfig or in-cluster)",
                  file=sys.stderr)
            return 2
        certificates = SelfManagedCertificates(
            api, Settings(namespace=args.namespace, secret_name=args.tls_secret, service=args.service),
            Path(args.cert_dir), check_interval=dt.timedelta(seconds=args.cert_check_interval))
        try:
            certificates.ensure()
        except Exception as exc:  # RBAC, apiserver down: say so instead of a traceback
            print(f"multus-webhook serve: cannot set up the self-managed certificates (Secret {args.namespace}/"
                  f"{args.tls_secret}, webhook configurations {Settings.webhook_configuration}): "
                  f"{status_message(exc) if isinstance(exc, ApiException) else exc}", file=sys.stderr)
            return 1
    for name in ("tls.crt", "tls.key"):
        if not (Path(args.cert_dir) / name).is_file():
            print(f"multus-webhook serve: {Path(args.cert_dir) / name} is missing "
                  "(create one with 'multus-webhook certs --out DIR')", file=sys.stderr)
            return 2
    problem = tls_problem(Path(args.cert_dir), Path(args.client_ca) if args.client_ca else None)
    if problem:
        print(f"multus-webhook serve: {problem}", file=sys.stderr)
        return 2

    state = ServerState(context=context, body_timeout=args.body_timeout, deadline=args.deadline,
                        deadline_margin=args.deadline_margin)
    state.metrics.registry.register(PolicyMetrics(source))
    stop_controller = threading.Event()
    controller_thread: threading.Thread | None = None
    if live is not None:
        # The watches run in threads; handlers only read the cache, and /readyz waits for its first sync.
        state.readiness = live.readiness
        Gauge("multus_webhook_cache_out_of_contact_seconds",
              "Seconds since the cluster cache lost contact with the apiserver (0 while its watches run).",
              registry=state.metrics.registry).set_function(live.out_of_contact)
        unreadable = Gauge("multus_webhook_cache_unreadable_objects",
                           "Objects the cluster cache keeps without what it could not read from them (a bug: "
                           "the log says which).", ["kind"], registry=state.metrics.registry)
        for kind in (NAD, POD):
            unreadable.labels(kind).set_function(functools.partial(live.unreadable, kind))
        state.metrics.registry.register(SkippedEvents(live))
        live.start()
        if not args.no_controller:
            controller = Controller(api, controller_config, live)
            controller_metrics.register(state.metrics.registry, controller)
            source.attach(controller)
            controller_thread = threading.Thread(target=controller.run, args=(stop_controller,),
                                                 name="controller", daemon=True)
            controller_thread.start()
    background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = []
    if certificates is not None:
        background.append(functools.partial(certificates.run,
                                            ca_bundle_interval=dt.timedelta(seconds=args.ca_bundle_check_interval)))
    if controller_thread is not None:
        background.append(source.announce_when_leading)
    try:
        asyncio.run(serve_forever(
            state, cert_dir=Path(args.cert_dir), host=args.host, port=args.port, idle_timeout=args.idle_timeout,
            client_ca=Path(args.client_ca) if args.client_ca else None, client_names=client_names,
            background=background,
        ))
    except CannotListen as exc:
        print(f"multus-webhook serve: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_controller.set()
        if live is not None:
            live.stop()
        if controller_thread is not None:
            controller_thread.join(15)  # lets it release the Lease
    return 0
