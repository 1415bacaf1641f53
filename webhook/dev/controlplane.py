"""Start etcd, kube-apiserver (and, for tests of scheduling, kube-scheduler) and multus-webhook on
loopback, the way envtest does, and register the webhook with the apiserver by URL.

Binaries come from hack/controlplane/build.sh (built from Go modules, cached outside the checkout) or
from MULTUS_WEBHOOK_CONTROLPLANE_DIR.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from webhook import certs
from webhook.atomicfile import write_atomic

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "controlplane" / "build.sh"
# Applied on their own, before any install overlay (which lists none): docs/install.md.
CRDS = REPO / "manifests" / "crds"
WEBHOOK_CONFIGURATIONS = REPO / "manifests" / "base" / "webhook" / "webhook-configurations.yaml"


T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    pass


def eventually(probe: Callable[[], T], what: str, until: Callable[[T], object] = bool, timeout: float = 30) -> T:
    """The first value of probe() that ``until`` accepts, polling while a cache or controller catches up."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl(2), looked up once in the parent: the child between fork and exec should do no more
    than call it. None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def spawn(args: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
          parent_death_signal: signal.Signals = signal.SIGTERM) -> subprocess.Popen[bytes]:
    """``args`` as a child process writing to ``log`` (appended: a restarted process keeps the log of its
    previous run), in a session of its own so that a Ctrl-C meant for us (the terminal signals its
    whole foreground process group) does not reach it before we stop it in order.

    On Linux it also gets ``parent_death_signal`` when the thread that started it dies
    (PR_SET_PDEATHSIG): a session of its own would otherwise outlive us, with ppid 1, whenever we end
    without stopping it (SIGKILL, or a signal we do not handle), holding its ports and data. So start
    it from a thread that lives as long as it should, as the main thread does."""
    die_with_parent: Callable[[], None] | None = None
    if _PRCTL is not None:
        prctl, parent = _PRCTL, os.getpid()

        def die_with_parent() -> None:
            # A parent that died between fork and prctl sends nothing any more.
            if prctl(_PR_SET_PDEATHSIG, parent_death_signal, 0, 0, 0) == 0 and os.getppid() != parent:
                os.kill(os.getpid(), parent_death_signal)

    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent, env=env, cwd=cwd)


def binaries_dir() -> Path:
    """Build (or find) kube-apiserver, kube-scheduler, etcd and kubectl; returns their directory."""
    try:
        out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        raise ControlPlaneError(f"could not build the control plane binaries with {BUILD_SCRIPT}: {exc}") from exc
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A port free now. Free now only: another process (a test run beside this one, the local end of any
    outgoing connection) may take it before the server we pass it to binds it, so a server started on
    one is started again on another when it finds it taken (``lost_port``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: Tries of a server on ports from free_port() that were taken before it could bind them.
PORT_TRIES = 5


def log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def lost_port(proc: subprocess.Popen[bytes], log: Path, offset: int) -> bool:
    """Whether ``proc`` has exited saying, in ``log`` past ``offset`` (what it wrote), that an address it
    was to listen on is in use (Go's "bind: address already in use", Python's "Address already in use")."""
    if proc.poll() is None:
        return False
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            said = f.read().decode(errors="replace")
    except OSError:
        return False
    return "address already in use" in said.lower()


def start_on_port(spawn: Callable[[], subprocess.Popen[bytes]], ready: Callable[[subprocess.Popen[bytes]], None],
                  log: Path, new_port: Callable[[], None] | None) -> None:
    """``spawn()`` a server and wait until ``ready`` (which raises ControlPlaneError if it is not). When
    the server exited because a port it was given was taken meanwhile (a port from free_port() is free
    only when chosen), ``new_port()`` picks another and it is spawned again, PORT_TRIES times in all.
    ``new_port`` None: the port was given, or served on (clients have the URL), and is kept."""
    attempt = 1
    while True:
        offset = log_size(log)
        proc = spawn()
        try:
            ready(proc)
            return
        except ControlPlaneError:
            if new_port is None or attempt == PORT_TRIES or not lost_port(proc, log, offset):
                raise
        new_port()
        attempt += 1


def wait_http(url: str, timeout: float, *, proc: subprocess.Popen[bytes] | None = None, what: str = "",
              context: ssl.SSLContext | None = None) -> None:
    """Until ``url`` answers 200 (etcd's /health; with ``context``, an HTTPS one), never through a proxy:
    what it waits for is on loopback. Raises ControlPlaneError when ``proc`` exits first, or at the end."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ControlPlaneError(f"{what or url} exited with {proc.returncode} before it was ready")
        try:
            with opener.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise ControlPlaneError(f"{what or url} not ready after {timeout:.0f}s: {last}")


def wait_https(url: str, ca: Path, timeout: float, *, client: tuple[Path, Path] | None = None,
               proc: subprocess.Popen[bytes] | None = None, what: str = "") -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    if client:
        ctx.load_cert_chain(*client)
    wait_http(url, timeout, proc=proc, what=what, context=ctx)


class ControlPlane:
    """etcd + kube-apiserver with an admin kubeconfig, and kube-scheduler on demand (start_scheduler).
    Use as a context manager."""

    def __init__(self, work_dir: Path | None = None, bin_dir: Path | None = None,
                 apiserver_args: Sequence[str] = ()) -> None:
        self.bin_dir = bin_dir or binaries_dir()
        #: More kube-apiserver flags (an admission configuration), after those of every control plane.
        self.apiserver_args = tuple(apiserver_args)
        self._own_dir = work_dir is None
        self.dir = work_dir or Path(tempfile.mkdtemp(prefix="multus-webhook-cp-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = self.dir / "pki"
        self.kubeconfig = self.dir / "kubeconfig"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.etcd_port = 0
        self.port = 0
        self.scheduler_port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, args: Sequence[str],
               parent_death_signal: signal.Signals = signal.SIGTERM) -> subprocess.Popen[bytes]:
        proc = spawn(args, self.dir / f"{name}.log", parent_death_signal=parent_death_signal)
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        self.start_etcd()
        self.write_pki()
        self.start_apiserver()
        self.write_kubeconfig()
        self.install_crds()

    def start_etcd(self) -> None:
        """etcd, once it answers /health: its client port from free_port() the first time (a restart keeps
        it), a new peer port at each start; started again when one of them was taken meanwhile."""
        chosen = not self.etcd_port
        self.etcd_port = self.etcd_port or free_port()
        self._start("etcd", lambda: self._etcd_args(free_port()),
                    lambda proc: wait_http(f"http://127.0.0.1:{self.etcd_port}/health", 60, proc=proc, what="etcd"),
                    # The peer port is new at every try: a given client port is tried again.
                    self._repick("etcd_port") if chosen else lambda: None)

    def _start(self, name: str, args: Callable[[], Sequence[str]], ready: Callable[[subprocess.Popen[bytes]], None],
               new_port: Callable[[], None] | None, parent_death_signal: signal.Signals = signal.SIGTERM) -> None:
        start_on_port(lambda: self._spawn(name, args(), parent_death_signal), ready, self.dir / f"{name}.log", new_port)

    def _repick(self, attr: str) -> Callable[[], None]:
        """What picks another port for the server whose port is ``attr``."""
        return lambda: setattr(self, attr, free_port())

    def _etcd_args(self, peer: int) -> list[str]:
        return [
            str(self.bin_dir / "etcd"), "--data-dir", str(self.dir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ]

    def write_pki(self) -> None:
        if (self.pki / "ca.crt").exists():
            return
        self.pki.mkdir(parents=True, exist_ok=True)
        ca = certs.new_ca("multus-webhook-test-ca")
        serving = certs.issue(ca, "kube-apiserver", dns_names=["localhost", "kubernetes.default.svc"],
                              ip_addresses=["127.0.0.1"])
        admin = certs.issue(ca, "admin", client=True, organizations=["system:masters"])
        # The scheduler as the user its bootstrap RBAC (system:kube-scheduler) is written for, not as
        # admin: a permission it lacks in a cluster shows here too.
        scheduler = certs.issue(ca, "system:kube-scheduler", client=True)
        scheduler_serving = certs.issue(ca, "kube-scheduler", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
        sa = certs.new_ca("service-accounts")  # only its key is used, to sign service account tokens
        for name, data, mode in [
            ("ca.crt", ca.cert_pem, 0o644), ("ca.key", ca.key_pem, 0o600),
            ("apiserver.crt", serving.cert_pem, 0o644), ("apiserver.key", serving.key_pem, 0o600),
            ("admin.crt", admin.cert_pem, 0o644), ("admin.key", admin.key_pem, 0o600),
            ("kube-scheduler.crt", scheduler.cert_pem, 0o644), ("kube-scheduler.key", scheduler.key_pem, 0o600),
            ("kube-scheduler-serving.crt", scheduler_serving.cert_pem, 0o644),
            ("kube-scheduler-serving.key", scheduler_serving.key_pem, 0o600),
            ("sa.key", sa.key_pem, 0o600),
        ]:
            write_atomic(self.pki / name, data, mode)
        from cryptography.hazmat.primitives import serialization

        pub = sa.key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        write_atomic(self.pki / "sa.pub", pub)

    def start_apiserver(self) -> None:
        """kube-apiserver, once ready: on a port from free_port() the first time (another one if that was
        taken before it could bind it); a restart keeps its port (clients have its URL)."""
        chosen = not self.port
        self.port = self.port or free_port()
        p = self.pki
        # SIGKILL when we die: etcd, signalled at the same moment, is gone first, and a graceful shutdown
        # without etcd hung for minutes (stop() too gives it 15s, then SIGKILL).
        self._start("kube-apiserver", self._apiserver_args,
                    lambda proc: wait_https(f"{self.url}/readyz", p / "ca.crt", 90,
                                            client=(p / "admin.crt", p / "admin.key"), proc=proc,
                                            what="kube-apiserver"),
                    self._repick("port") if chosen else None, parent_death_signal=signal.SIGKILL)

    def _apiserver_args(self) -> list[str]:
        p = self.pki
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--secure-port={self.port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
            "--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount",
            # Loopback cannot be the kubernetes Service endpoint; nothing here needs that Service.
            "--endpoint-reconciler-type=none",
            # Without it an open watch holds a SIGTERMed apiserver until the server's 60s shutdown
            # timeout, so a restart (stop_apiserver) ended in SIGKILL; with it watches are closed.
            "--shutdown-watch-termination-grace-period=2s",
            f"--service-account-issuer=https://127.0.0.1:{self.port}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            *self.apiserver_args,
        ]

    def write_kubeconfig(self, path: Path | None = None, *, user: str = "admin") -> Path:
        """A kubeconfig with the certificates embedded, so it can be copied anywhere: admin's, or that
        of another user whose client certificate write_pki wrote (``user``.crt and .key)."""
        def b64(name: str) -> str:
            return certs.ca_bundle((self.pki / name).read_bytes())

        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "local",
            "clusters": [{"name": "local", "cluster": {"server": self.url,
                                                        "certificate-authority-data": b64("ca.crt")}}],
            "users": [{"name": user, "user": {"client-certificate-data": b64(f"{user}.crt"),
                                               "client-key-data": b64(f"{user}.key")}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        }
        target = path or self.kubeconfig
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, yaml.safe_dump(config).encode(), 0o600)
        return target

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                                input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode < 0:
            # Killed: a Ctrl-C at the terminal reaches it with us; it says nothing on stderr then.
            raise ControlPlaneError(f"kubectl {' '.join(args)} was killed by {signal.Signals(-result.returncode).name}")
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def install_crds(self) -> None:
        """manifests/crds as docs/install.md applies it (`kubectl wait` has no -k: the built CRDs by name)."""
        self.kubectl("apply", "-k", str(CRDS))
        built = self.kubectl("kustomize", str(CRDS)).stdout
        names = [f"crd/{d['metadata']['name']}" for d in yaml.safe_load_all(built) if d]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)

    def start_scheduler(self, extra_args: Sequence[str] = ()) -> None:
        """kube-scheduler against this apiserver; returns once it has synced its informers (readyz), so a
        pod created after it is scheduled by it. stop() or stop_scheduler() ends it. On a port from
        free_port() the first time, another one if that was taken before it could bind it."""
        chosen = not self.scheduler_port
        self.scheduler_port = self.scheduler_port or free_port()
        self._start("kube-scheduler", lambda: self._scheduler_args(extra_args),
                    lambda proc: wait_https(f"https://127.0.0.1:{self.scheduler_port}/readyz", self.pki / "ca.crt",
                                            60, proc=proc, what="kube-scheduler"),
                    self._repick("scheduler_port") if chosen else None)

    def _scheduler_args(self, extra_args: Sequence[str]) -> list[str]:
        kubeconfig = self.write_kubeconfig(self.dir / "kube-scheduler.kubeconfig", user="kube-scheduler")
        p = self.pki
        return [
            str(self.bin_dir / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            # One scheduler: waiting for a lease would only delay the start (and a restart by the
            # lease duration).
            "--leader-elect=false",
            # Its endpoints need a port even though only readyz is used: --secure-port=0 turns serving
            # off, readyz with it. Certificates from the test CA so the probe can verify them.
            f"--secure-port={self.scheduler_port}", "--bind-address=127.0.0.1",
            f"--tls-cert-file={p / 'kube-scheduler-serving.crt'}",
            f"--tls-private-key-file={p / 'kube-scheduler-serving.key'}",
            # Named explicitly: left empty, delegated auth falls back to the in-cluster config, which
            # in a test run inside a pod is some other cluster's.
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            # The apiserver has no --requestheader-client-ca-file, so the lookup of the
            # extension-apiserver-authentication ConfigMap only fills the log with "missing content
            # for CA bundle"; readyz is anonymous anyway.
            "--authentication-skip-lookup",
            # Each attempt ("no fit; waiting") and binding is then in kube-scheduler.log for a failed test.
            "--v=2",
            *extra_args,
        ]

    def stop_scheduler(self) -> None:
        self._terminate("kube-scheduler")

    def stop_apiserver(self) -> None:
        self._terminate("kube-apiserver")

    def stop(self) -> None:
        # apiserver before etcd: an apiserver whose etcd is gone is slow to shut down.
        for name in reversed(list(self.procs)):
            self._terminate(name)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _terminate(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            terminate(proc, 15)


def standalone_env() -> dict[str, str]:
    """The environment for `serve`, without KUBERNETES_SERVICE_HOST: in a pod (a CI runner on Kubernetes)
    serve would watch that cluster through the pod's service account, and a server given no --kubeconfig
    here is meant to stand alone whatever the calling environment holds."""
    return {**{k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}, "PYTHONUNBUFFERED": "1"}


class WebhookServer:
    """`multus-webhook serve` as a real process, with its own CA, on a loopback port."""

    def __init__(self, work_dir: Path, extra_args: Sequence[str] = (), port: int = 0,
                 client_cert: tuple[Path, Path] | None = None, hostname: str = "127.0.0.1") -> None:
        self.dir = work_dir
        #: The name in the URL (the apiserver's and the probes'): one the serving certificate names.
        self.hostname = hostname
        #: The certificate and key the readiness probe presents (for a server started with --client-ca).
        self.client_cert = client_cert
        self.cert_dir = work_dir / "certs"
        #: A port from free_port() may be taken before the server binds it: its first start then tries
        #: another. A port given, or one it has served on (the apiserver has its URL), is kept.
        self._port_chosen = not port
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        if not (self.cert_dir / "tls.crt").exists():
            ca = certs.new_ca()
            leaf = certs.issue(ca, "127.0.0.1", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
            certs.write_bundle(self.cert_dir, ca, leaf)

    @property
    def url(self) -> str:
        return f"https://{self.hostname}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.crt"

    def readyz(self) -> tuple[int, str]:
        return self.get("/readyz")

    def get(self, path: str) -> tuple[int, str]:
        """The status and body of a GET of ``path``."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if self.client_cert:
            ctx.load_cert_chain(*self.client_cert)
        try:
            with urllib.request.urlopen(f"{self.url}{path}", context=ctx, timeout=5) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def start(self) -> None:
        log = self.dir / "webhook.log"

        def serve() -> subprocess.Popen[bytes]:
            self.proc = spawn(
                [sys.executable, "-m", "webhook.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--cert-dir", str(self.cert_dir), *self.extra_args],
                log, env=standalone_env(),
            )
            return self.proc

        try:
            start_on_port(serve, lambda proc: wait_https(f"{self.url}/healthz", self.ca_file, 30,
                                                         client=self.client_cert, proc=proc,
                                                         what="multus-webhook serve"),
                          log, self._new_port if self._port_chosen else None)
        except BaseException:
            # ``with`` calls no __exit__ when __enter__ raises: a server that never answered would outlive
            # the test run.
            self.stop()
            raise
        self._port_chosen = False

    def _new_port(self) -> None:
        self.port = free_port()

    def stop(self) -> int | None:
        return None if self.proc is None else terminate(self.proc, 20)

    def __enter__(self) -> WebhookServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def webhook_configurations(url: str, ca_pem: bytes, docs: Sequence[dict[str, Any]] | None = None
                           ) -> list[dict[str, Any]]:
    """Our webhook configurations from manifests/ (or ``docs``), pointed at ``url`` instead of the Service."""
    if docs is None:
        docs = [d for d in yaml.safe_load_all(WEBHOOK_CONFIGURATIONS.read_text()) if d]
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": certs.ca_bundle(ca_pem)}
        out.append(doc)
    return out


def terminate(proc: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit status (at once if it has exited)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def built_webhook_configurations(cp: ControlPlane, components: Sequence[str]) -> list[dict[str, Any]]:
    """Our webhook configurations as `kubectl kustomize` builds the base with these components of
    manifests/components."""
    manifests = REPO / "manifests"
    with tempfile.TemporaryDirectory() as overlay:
        (Path(overlay) / "kustomization.yaml").write_text(json.dumps({
            "resources": [os.path.relpath(manifests / "base", overlay)],
            "components": [os.path.relpath(manifests / "components" / c, overlay) for c in components]}))
        built = cp.kubectl("kustomize", overlay).stdout
    return [d for d in yaml.safe_load_all(built) if d and d["kind"] in (
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")]


def register_webhook(cp: ControlPlane, server: WebhookServer, *, failure_policy: str | None = None,
                     components: Sequence[str] = ()) -> None:
    """Our webhook configurations (with these components, see built_webhook_configurations) applied,
    pointed at ``server``."""
    docs = webhook_configurations(server.url, server.ca_file.read_bytes(),
                                  built_webhook_configurations(cp, components) if components else None)
    if failure_policy:
        for doc in docs:
            for hook in doc["webhooks"]:
                hook["failurePolicy"] = failure_policy
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


@contextlib.contextmanager
def local_stack(work_dir: Path, webhook_args: Sequence[str] = ()) -> Iterator[tuple[ControlPlane, WebhookServer]]:
    """The control plane with `multus-webhook serve --kubeconfig` (live cache and controller, as in a
    cluster) registered, once its cache has synced."""
    with ControlPlane(work_dir / "controlplane") as cp:
        cp.kubectl("create", "namespace", "multus-webhook")
        server = WebhookServer(work_dir, ["--kubeconfig", str(cp.kubeconfig), *webhook_args])
        with server:
            eventually(lambda: server.readyz()[0] == 200, "the webhook's cache to sync")
            register_webhook(cp, server)
            yield cp, server
